// What a backend provides to the platform-independent shim: runtime facts, and a model load that
// reports its stages and returns a runner. The Core ML backend exists only where
// `canImport(CoreML)` (macOS, or Linux with the test-only stand-in); elsewhere every load reports
// that Core ML is unavailable.

import CMacb

/// What a load job asks of the backend.
struct LoadRequest {
    let modelPath: String
    let compiledPath: String?
    let computeUnits: Int32
    let prewarm: Bool
    let functionName: String?  // one function of a multi-function model; nil: its default function

    /// Loads of one model share a job: same package, cache path, compute units and function.
    var key: String { "\(modelPath)\u{0}\(compiledPath ?? "")\u{0}\(computeUnits)\u{0}\(functionName ?? "")" }
}

/// What a finished load hands back.
struct LoadedRunner {
    let inputs: [FeatureSpec]  // sorted by name
    let outputs: [FeatureSpec]  // sorted by name
    let metadata: [(key: String, value: String)]  // sorted by key
    let runner: ModelRunner
    let usedCompiledCache: Bool
}

/// Which outputs a prediction wrote in place and which inputs it had to convert.
struct PredictionReport {
    var inputsCopied: [Bool]
    var outputsInPlace: [Bool]
}

/// Runs predictions on one loaded model. Calls are serialized by the owner (ModelCore).
protocol ModelRunner: AnyObject {
    var usesOutputBackings: Bool { get }
    func predict(inputs: [BoundTensor], outputs: [BoundTensor]) throws -> PredictionReport
}

/// The facts a backend knows about Core ML on this machine.
struct BackendFacts {
    var coreMLAvailable: Bool
    var neuralEngine: Int32  // 1 present, 0 absent, -1 unknown
    var neuralEngineCores: Int32
    var backendName: String
    var note: String
}

protocol Backend {
    func facts(runningInVM: Int32) -> BackendFacts
    /// Compiles (when needed), loads and prewarms; `stage` is called with each MACB_STAGE_* entered.
    func load(_ request: LoadRequest, stage: (Int32) -> Void) throws -> LoadedRunner
}

/// Chosen once, at compile time.
let currentBackend: Backend = {
    #if canImport(CoreML)
    return CoreMLBackend()
    #else
    return UnavailableBackend()
    #endif
}()

/// Every platform without Core ML: the same symbols, reporting why nothing can load.
struct UnavailableBackend: Backend {
    static let reason: String = "Core ML is not available on \(operatingSystemName()) (it exists only on Apple platforms)"

    func facts(runningInVM: Int32) -> BackendFacts {
        BackendFacts(coreMLAvailable: false, neuralEngine: 0, neuralEngineCores: 0,
                     backendName: "none", note: Self.reason)
    }

    func load(_ request: LoadRequest, stage: (Int32) -> Void) throws -> LoadedRunner {
        throw ShimError(status: MACB_ERR_UNAVAILABLE, message: Self.reason)
    }
}
