// The element types the C ABI knows (MACB_DTYPE_*), their sizes, and which conversions are allowed.

import CMacb

enum DType: Int32, CustomStringConvertible {
    case float32 = 1
    case float16 = 2
    case float64 = 3
    case int32 = 4

    init?(code: Int32) {
        self.init(rawValue: code)
    }

    var byteSize: Int {
        switch self {
        case .float16: return 2
        case .float32, .int32: return 4
        case .float64: return 8
        }
    }

    var isFloat: Bool { self != .int32 }

    /// Conversion copies are made between float types only: an int/float mix is a caller mistake.
    func converts(to other: DType) -> Bool {
        self == other || (isFloat && other.isFloat)
    }

    var description: String {
        switch self {
        case .float32: return "float32"
        case .float16: return "float16"
        case .float64: return "float64"
        case .int32: return "int32"
        }
    }
}

/// Describes a dtype code that may not be valid, for messages.
func dtypeName(_ code: Int32) -> String {
    DType(code: code)?.description ?? "unknown dtype code \(code)"
}
