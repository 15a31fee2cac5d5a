// Copies a tensor between two strided buffers, converting the element type on the way: used for
// input conversion copies and for outputs Core ML did not write in place. Both sides' strides are
// honoured (Core ML outputs can be padded, e.g. a last axis of 3000 laid out every 3008 elements).

/// A strided buffer: where it starts, its element type and its strides in elements.
struct StridedSource {
    let base: UnsafeRawPointer
    let dtype: DType
    let strides: [Int]
}

struct StridedDestination {
    let base: UnsafeMutableRawPointer
    let dtype: DType
    let strides: [Int]
}

/// An element type the copy loop can read and write as a Double (exact for every type here).
private protocol CopyElement {
    static func load(_ base: UnsafeRawPointer, _ offset: Int) -> Double
    static func store(_ value: Double, _ base: UnsafeMutableRawPointer, _ offset: Int)
}

extension Float: CopyElement {
    static func load(_ base: UnsafeRawPointer, _ offset: Int) -> Double {
        Double(base.load(fromByteOffset: offset &* 4, as: Float.self))
    }
    static func store(_ value: Double, _ base: UnsafeMutableRawPointer, _ offset: Int) {
        base.storeBytes(of: Float(value), toByteOffset: offset &* 4, as: Float.self)
    }
}

extension Double: CopyElement {
    static func load(_ base: UnsafeRawPointer, _ offset: Int) -> Double {
        base.load(fromByteOffset: offset &* 8, as: Double.self)
    }
    static func store(_ value: Double, _ base: UnsafeMutableRawPointer, _ offset: Int) {
        base.storeBytes(of: value, toByteOffset: offset &* 8, as: Double.self)
    }
}

extension Float16: CopyElement {
    static func load(_ base: UnsafeRawPointer, _ offset: Int) -> Double {
        Double(base.load(fromByteOffset: offset &* 2, as: Float16.self))
    }
    static func store(_ value: Double, _ base: UnsafeMutableRawPointer, _ offset: Int) {
        base.storeBytes(of: Float16(Float(value)), toByteOffset: offset &* 2, as: Float16.self)
    }
}

/// Copies every element of `shape` from `source` to `destination`. The caller has checked that
/// both buffers reach every offset (TensorChecks) and that the dtypes convert.
func copyTensor(shape: [Int], from source: StridedSource, to destination: StridedDestination) {
    guard !shape.isEmpty, !shape.contains(where: { $0 <= 0 }) else { return }
    switch (source.dtype, destination.dtype) {
    case let (a, b) where a == b:
        copySameType(shape: shape, source, destination)
    case (.float16, .float32): copyConverting(shape: shape, source, destination, Float16.self, Float.self)
    case (.float32, .float16): copyConverting(shape: shape, source, destination, Float.self, Float16.self)
    case (.float16, .float64): copyConverting(shape: shape, source, destination, Float16.self, Double.self)
    case (.float64, .float16): copyConverting(shape: shape, source, destination, Double.self, Float16.self)
    case (.float32, .float64): copyConverting(shape: shape, source, destination, Float.self, Double.self)
    case (.float64, .float32): copyConverting(shape: shape, source, destination, Double.self, Float.self)
    default:
        break  // int32 <-> float is refused by TensorChecks before any copy
    }
}

/// Visits the start offsets (in elements, source and destination) of every innermost row.
private func forEachRow(shape: [Int], _ a: [Int], _ b: [Int], _ body: (Int, Int) -> Void) {
    let outer = shape.count - 1
    var index = [Int](repeating: 0, count: outer)
    var offsetA = 0, offsetB = 0
    while true {
        body(offsetA, offsetB)
        // Odometer over the outer axes, last outer axis fastest.
        var axis = outer - 1
        while axis >= 0 {
            index[axis] += 1
            offsetA &+= a[axis]
            offsetB &+= b[axis]
            if index[axis] < shape[axis] { break }
            offsetA &-= a[axis] &* shape[axis]
            offsetB &-= b[axis] &* shape[axis]
            index[axis] = 0
            axis -= 1
        }
        if axis < 0 { return }
    }
}

private func copySameType(shape: [Int], _ source: StridedSource, _ destination: StridedDestination) {
    let size = source.dtype.byteSize
    let rowLength = shape[shape.count - 1]
    let stepA = source.strides[shape.count - 1], stepB = destination.strides[shape.count - 1]
    forEachRow(shape: shape, source.strides, destination.strides) { rowA, rowB in
        if stepA == 1 && stepB == 1 {
            (destination.base + rowB &* size).copyMemory(from: source.base + rowA &* size, byteCount: rowLength &* size)
            return
        }
        for i in 0..<rowLength {
            (destination.base + (rowB &+ i &* stepB) &* size)
                .copyMemory(from: source.base + (rowA &+ i &* stepA) &* size, byteCount: size)
        }
    }
}

private func copyConverting<S: CopyElement, D: CopyElement>(
    shape: [Int], _ source: StridedSource, _ destination: StridedDestination, _: S.Type, _: D.Type
) {
    let rowLength = shape[shape.count - 1]
    let stepA = source.strides[shape.count - 1], stepB = destination.strides[shape.count - 1]
    forEachRow(shape: shape, source.strides, destination.strides) { rowA, rowB in
        for i in 0..<rowLength {
            D.store(S.load(source.base, rowA &+ i &* stepA), destination.base, rowB &+ i &* stepB)
        }
    }
}
