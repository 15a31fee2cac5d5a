// TEST-ONLY stand-in for Core ML's multi-arrays and feature values, so the shim's Core ML backend
// compiles and its logic can be tested on Linux. It executes no model and proves nothing about
// Core ML. Only what swift_bridge/Sources uses is declared public, with Apple's signatures,
// checked against Apple's documentation (developer.apple.com/documentation/coreml/...):
//   MLMultiArrayDataType        .../mlmultiarraydatatype: double/float64 = 0x10000|64, float32 =
//                               0x10000|32, float16 = 0x10000|16, int32 = 0x20000|32
//   MLMultiArray.init(dataPointer:shape:dataType:strides:deallocator:) throws   .../mlmultiarray/init(datapointer:shape:datatype:strides:deallocator:)
//   MLMultiArray.init(shape:dataType:) throws                                   .../mlmultiarray (Topics)
//   MLMultiArray.shape, .strides: [NSNumber] { get }; .dataType { get }          .../mlmultiarray/strides
//   withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R              .../withunsafebytes(_:)
//   withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer, [Int]) throws -> R) rethrows -> R  .../withunsafemutablebytes(_:)
//   MLFeatureValue.init(multiArray:) (convenience); var multiArrayValue: MLMultiArray? { get }  .../mlfeaturevalue/init(multiarray:)
//   protocol MLFeatureProvider { var featureNames: Set<String> { get }; func featureValue(for featureName: String) -> MLFeatureValue? }
//                               .../mlfeatureprovider/featurenames, .../featurevalue(for:)
//   MLDictionaryFeatureProvider.init(dictionary: [String : Any]) throws          .../mldictionaryfeatureprovider/init(dictionary:)

import Foundation

public enum MLMultiArrayDataType: Int {
    case double = 65600  // 0x10000 | 64
    case float32 = 65568  // 0x10000 | 32
    case float16 = 65552  // 0x10000 | 16
    case int32 = 131104  // 0x20000 | 32

    public static var float64: MLMultiArrayDataType { .double }
    public static var float: MLMultiArrayDataType { .float32 }

    var byteSize: Int {
        switch self {
        case .double: return 8
        case .float32, .int32: return 4
        case .float16: return 2
        }
    }
}

public class MLMultiArray {
    public let shape: [NSNumber]
    public let strides: [NSNumber]
    public let dataType: MLMultiArrayDataType
    let storage: UnsafeMutableRawPointer
    let byteCount: Int
    private let release: ((UnsafeMutableRawPointer) -> Void)?

    public init(dataPointer: UnsafeMutableRawPointer, shape: [NSNumber], dataType: MLMultiArrayDataType,
                strides: [NSNumber], deallocator: ((UnsafeMutableRawPointer) -> Void)? = nil) throws {
        guard shape.count == strides.count, !shape.isEmpty else {
            throw standInError("shape \(shape) and strides \(strides) differ in rank")
        }
        self.shape = shape
        self.strides = strides
        self.dataType = dataType
        storage = dataPointer
        byteCount = extentElements(shape.map { $0.intValue }, strides.map { $0.intValue }) * dataType.byteSize
        release = deallocator
    }

    public convenience init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws {
        try self.init(standInShape: shape.map { $0.intValue }, dataType: dataType, strides: nil)
    }

    /// Owned, zero-filled storage with the given strides (C order when nil). Not Apple API.
    init(standInShape shape: [Int], dataType: MLMultiArrayDataType, strides: [Int]?) throws {
        let layout = strides ?? cOrderStrides(shape)
        guard layout.count == shape.count, !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
            throw standInError("bad shape \(shape) or strides \(layout)")
        }
        self.shape = shape.map { NSNumber(value: $0) }
        self.strides = layout.map { NSNumber(value: $0) }
        self.dataType = dataType
        byteCount = extentElements(shape, layout) * dataType.byteSize
        storage = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
        release = { $0.deallocate() }
    }

    deinit {
        release?(storage)
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: byteCount))
    }

    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer, [Int]) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: storage, count: byteCount), strides.map { $0.intValue })
    }

    /// Every element in C order of the logical index, as Doubles. Not Apple API.
    func logicalValues() -> [Double] {
        var values: [Double] = []
        values.reserveCapacity(elementCount)
        forEachOffset { offset in
            switch dataType {
            case .double: values.append(storage.load(fromByteOffset: offset * 8, as: Double.self))
            case .float32: values.append(Double(storage.load(fromByteOffset: offset * 4, as: Float.self)))
            case .float16: values.append(Double(storage.load(fromByteOffset: offset * 2, as: Float16.self)))
            case .int32: values.append(Double(storage.load(fromByteOffset: offset * 4, as: Int32.self)))
            }
        }
        return values
    }

    /// Stores `values` (C order of the logical index) converted to this array's type. Not Apple API.
    func setLogicalValues(_ values: [Double]) {
        var i = 0
        forEachOffset { offset in
            let value = values[i]
            i += 1
            switch dataType {
            case .double: storage.storeBytes(of: value, toByteOffset: offset * 8, as: Double.self)
            case .float32: storage.storeBytes(of: Float(value), toByteOffset: offset * 4, as: Float.self)
            case .float16: storage.storeBytes(of: Float16(Float(value)), toByteOffset: offset * 2, as: Float16.self)
            case .int32: storage.storeBytes(of: Int32(value.rounded()), toByteOffset: offset * 4, as: Int32.self)
            }
        }
    }

    var elementCount: Int { intShape.reduce(1, *) }

    private var intShape: [Int] { shape.map { $0.intValue } }

    /// Visits the element offset of every logical index in C order (an odometer over the axes).
    private func forEachOffset(_ body: (Int) -> Void) {
        let sizes = intShape, steps = strides.map { $0.intValue }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else { return }
        var index = [Int](repeating: 0, count: sizes.count)
        var offset = 0
        while true {
            body(offset)
            var axis = sizes.count - 1
            while axis >= 0 {
                index[axis] += 1
                offset += steps[axis]
                if index[axis] < sizes[axis] { break }
                offset -= steps[axis] * sizes[axis]
                index[axis] = 0
                axis -= 1
            }
            if axis < 0 { return }
        }
    }
}

public class MLFeatureValue {
    public let multiArrayValue: MLMultiArray?

    public convenience init(multiArray value: MLMultiArray) {
        self.init(standInArray: value)
    }

    init(standInArray: MLMultiArray?) {
        multiArrayValue = standInArray
    }
}

public protocol MLFeatureProvider {
    var featureNames: Set<String> { get }
    func featureValue(for featureName: String) -> MLFeatureValue?
}

public class MLDictionaryFeatureProvider: MLFeatureProvider {
    let values: [String: MLFeatureValue]

    /// Like Core ML: values may be MLFeatureValue or MLMultiArray; anything else is an error.
    public init(dictionary: [String: Any]) throws {
        var values: [String: MLFeatureValue] = [:]
        for (name, value) in dictionary {
            if let feature = value as? MLFeatureValue {
                values[name] = feature
            } else if let array = value as? MLMultiArray {
                values[name] = MLFeatureValue(multiArray: array)
            } else {
                throw standInError("feature '\(name)' is neither MLFeatureValue nor MLMultiArray")
            }
        }
        self.values = values
    }

    public var featureNames: Set<String> { Set(values.keys) }

    public func featureValue(for featureName: String) -> MLFeatureValue? {
        values[featureName]
    }
}

func cOrderStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var step = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = step
        step *= shape[axis]
    }
    return strides
}

func extentElements(_ shape: [Int], _ strides: [Int]) -> Int {
    zip(shape, strides).reduce(1) { $0 + max($1.0 - 1, 0) * $1.1 }
}

/// Core ML reports errors as NSError in the com.apple.CoreML domain; so does the stand-in.
func standInError(_ message: String) -> NSError {
    NSError(domain: "com.apple.CoreML", code: 0,
            userInfo: [NSLocalizedDescriptionKey: "stand-in CoreML: \(message)"])
}
