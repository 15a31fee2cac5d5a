// The Core ML backend, part 1: facts (Neural Engine detection) and loading. A load compiles the
// package to a stable cache path (Core ML's specialization cache is keyed on the path, so a
// temporary path would be recompiled and re-specialized every time), loads it with the requested
// compute units, reads its description, and prewarms it with one prediction on zeros so a failed
// Neural Engine compile shows up now rather than on the caller's first prediction.
//
// Compiled where `canImport(CoreML)`: macOS 13+ on Apple silicon, or Linux with the test-only
// stand-in module (swift_bridge/StandIn), which executes no model.

#if canImport(CoreML)
import CMacb
import CoreML
import Dispatch
import Foundation

struct CoreMLBackend: Backend {
    #if MACB_STANDIN
    static let name = "coreml-standin"
    #else
    static let name = "coreml"
    #endif

    func facts(runningInVM: Int32) -> BackendFacts {
        var facts = BackendFacts(coreMLAvailable: true, neuralEngine: -1, neuralEngineCores: 0,
                                 backendName: Self.name, note: "")
        if #available(macOS 14.0, *) {
            let cores = MLModel.availableComputeDevices.compactMap { device -> Int? in
                if case .neuralEngine(let engine) = device { return engine.totalCoreCount }
                return nil
            }.first
            facts.neuralEngine = cores == nil ? 0 : 1
            facts.neuralEngineCores = Int32(clamping: cores ?? 0)
        } else {
            #if os(macOS)
            // Before macOS 14 there is no device list: every Apple silicon Mac has a Neural Engine.
            facts.neuralEngine = sysctlInt32("hw.optional.arm64") == 1 ? 1 : 0
            #endif
        }
        #if os(macOS)
        if runningInVM == 1 && facts.neuralEngine == 1 {
            facts.neuralEngine = 0
            facts.note = "running in a virtual machine, where Neural Engine compiles hang: treated as absent"
        }
        #endif
        if facts.neuralEngine == 0 && facts.note.isEmpty { facts.note = "no Neural Engine on this machine" }
        return facts
    }

    func load(_ request: LoadRequest, stage: (Int32) -> Void) throws -> LoadedRunner {
        try FunctionSelection.checkSupported(request.functionName)  // before a compile an old OS cannot use
        var (url, usedCache) = try compiledModel(for: request, stage: stage)
        stage(MACB_STAGE_LOADING)
        let model: MLModel
        do {
            model = try loadModel(at: url, request: request)
        } catch let error as ShimError
            where usedCache && request.compiledPath != nil && error.status == MACB_ERR_LOAD_FAILED
        {
            // A cached .mlmodelc that no longer loads (an OS update, a partial copy): compile again once.
            try? FileManager.default.removeItem(at: url)
            (url, usedCache) = try compiledModel(for: request, stage: stage)
            stage(MACB_STAGE_LOADING)
            model = try loadModel(at: url, request: request, after: error)
        }
        let description = try ModelDescriptionReader.read(model.modelDescription)
        let runner = CoreMLRunner(model: model, inputs: description.inputs)
        if request.prewarm {
            stage(MACB_STAGE_PREWARMING)
            do {
                try runner.prewarm()
            } catch {
                throw ShimError(status: MACB_ERR_LOAD_FAILED, message: "the prewarm prediction failed: \(localized(error))")
            }
        }
        return LoadedRunner(inputs: description.inputs, outputs: description.outputs,
                            metadata: description.metadata, runner: runner, usedCompiledCache: usedCache)
    }

    /// The .mlmodelc to load, compiling into the stable cache path when it is not there yet.
    private func compiledModel(for request: LoadRequest, stage: (Int32) -> Void) throws -> (URL, Bool) {
        let source = URL(fileURLWithPath: request.modelPath)
        guard let compiledPath = request.compiledPath else { return (source, true) }  // a .mlmodelc
        let destination = URL(fileURLWithPath: compiledPath)
        if isDirectory(destination) { return (destination, true) }
        stage(MACB_STAGE_COMPILING)
        let temporary = try compile(source)
        try keep(temporary, at: destination)
        return (destination, false)
    }

    /// MLModel.compileModel(at:completionHandler:) (macOS 13), waited for on this background thread.
    private func compile(_ source: URL) throws -> URL {
        final class Outcome: @unchecked Sendable { var value: Result<URL, Error>? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        MLModel.compileModel(at: source) { result in
            outcome.value = result
            done.signal()
        }
        done.wait()
        switch outcome.value {
        case .success(let url)?: return url
        case .failure(let error)?:
            throw ShimError(status: MACB_ERR_COMPILE_FAILED,
                            message: "Core ML could not compile \(source.path): \(localized(error))")
        case nil: throw ShimError.internalError("compileModel finished without a result")
        }
    }

    /// Moves Core ML's temporary .mlmodelc to `destination` atomically (stage, then rename).
    private func keep(_ temporary: URL, at destination: URL) throws {
        let files = FileManager.default
        let folder = destination.deletingLastPathComponent()
        let staging = folder.appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).partial")
        do {
            try files.createDirectory(at: folder, withIntermediateDirectories: true)
            try files.moveItem(at: temporary, to: staging)
        } catch {
            throw ShimError(status: MACB_ERR_COMPILE_FAILED,
                            message: "could not keep the compiled model at \(destination.path): \(localized(error))")
        }
        if rename(staging.path, destination.path) != 0 {
            try? files.removeItem(at: staging)
            // Another process kept the same model first: theirs is as good as ours.
            guard isDirectory(destination) else {
                throw ShimError(status: MACB_ERR_COMPILE_FAILED,
                                message: "could not move the compiled model to \(destination.path) (errno \(errno))")
            }
        }
    }

    private func loadModel(at url: URL, request: LoadRequest, after earlier: ShimError? = nil) throws -> MLModel {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = MLComputeUnits(rawValue: Int(request.computeUnits)) ?? .all
        try FunctionSelection.apply(request.functionName, to: configuration, model: url)
        do {
            return try MLModel(contentsOf: url, configuration: configuration)
        } catch {
            let before = earlier.map { " (after the cached copy failed: \($0.message))" } ?? ""
            throw ShimError(status: MACB_ERR_LOAD_FAILED,
                            message: "Core ML could not load \(url.path): \(localized(error))\(before)")
        }
    }

    private func isDirectory(_ url: URL) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &directory) && directory.boolValue
    }
}

/// Reads an MLModelDescription into FeatureSpecs: fixed-shape multi-arrays only.
enum ModelDescriptionReader {
    static func read(_ description: MLModelDescription) throws
        -> (inputs: [FeatureSpec], outputs: [FeatureSpec], metadata: [(key: String, value: String)])
    {
        let inputs = try specs(description.inputDescriptionsByName, role: "input")
        let outputs = try specs(description.outputDescriptionsByName, role: "output")
        let custom = description.metadata[MLModelMetadataKey.creatorDefinedKey] as? [String: String] ?? [:]
        let metadata = custom.keys.sorted().map { (key: $0, value: custom[$0] ?? "") }
        return (inputs, outputs, metadata)
    }

    private static func specs(_ byName: [String: MLFeatureDescription], role: String) throws -> [FeatureSpec] {
        try byName.keys.sorted().map { name in
            guard let constraint = byName[name]?.multiArrayConstraint else {
                throw ShimError(status: MACB_ERR_UNSUPPORTED_MODEL, message: "\(role) '\(name)' is not a multi-array")
            }
            guard let dtype = dtype(of: constraint.dataType) else {
                let code = constraint.dataType.rawValue
                throw ShimError(status: MACB_ERR_UNSUPPORTED_MODEL,
                                message: "\(role) '\(name)' has data type \(code), not float32, float16, float64 or int32")
            }
            let shape = constraint.shape.map { $0.intValue }
            guard (1...Int(MACB_MAX_RANK)).contains(shape.count), shape.allSatisfy({ $0 > 0 }) else {
                throw ShimError(status: MACB_ERR_UNSUPPORTED_MODEL, message: "\(role) '\(name)' has shape \(shape)")
            }
            return FeatureSpec(name: name, dtype: dtype, shape: shape)
        }
    }
}

/// Core ML's own description of an error (NSError's localizedDescription), or the shim's message.
func localized(_ error: Error) -> String {
    if let shim = error as? ShimError { return shim.message }
    return error.localizedDescription
}

func dtype(of dataType: MLMultiArrayDataType) -> DType? {
    switch dataType {
    case .float32: return .float32
    case .float16: return .float16
    case .double: return .float64
    case .int32: return .int32
    @unknown default: return nil  // int8 (macOS 26) and anything newer
    }
}

func multiArrayDataType(_ dtype: DType) -> MLMultiArrayDataType {
    switch dtype {
    case .float32: return .float32
    case .float16: return .float16
    case .float64: return .double
    case .int32: return .int32
    }
}
#endif
