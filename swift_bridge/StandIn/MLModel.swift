// TEST-ONLY stand-in for Core ML's model API, so the shim's Core ML backend compiles and its logic
// (compile-to-cache, load, description, backings, prewarm, errors, delays) can be tested on Linux.
// It executes no model and proves nothing about Core ML: a "model" is a standin.json that declares
// tensors, delays, failures and trivial outputs (see Behaviour.swift). Only what
// swift_bridge/Sources uses is public, with Apple's signatures, checked against Apple's
// documentation (developer.apple.com/documentation/coreml/...):
//   MLModel.compileModel(at url: URL, completionHandler handler: @escaping (Result<URL, any Error>) -> Void)
//                               macOS 13; .../mlmodel/compilemodel(at:completionhandler:)
//   MLModel.init(contentsOf url: URL, configuration: MLModelConfiguration) throws  (convenience in Apple's SDK)
//                               .../mlmodel/init(contentsof:configuration:)
//   MLModel.modelDescription: MLModelDescription { get }                          .../mlmodel (Topics)
//   MLModel.prediction(from input: any MLFeatureProvider, options: MLPredictionOptions) throws -> any MLFeatureProvider
//                               .../mlmodel/prediction(from:options:)
//   MLModel.availableComputeDevices: [MLComputeDevice] { get }  (static, macOS 14) .../mlmodel/availablecomputedevices-6klyt
//   MLComputeDevice: .cpu(_), .gpu(_), .neuralEngine(MLNeuralEngineComputeDevice)  .../mlcomputedevice
//   MLNeuralEngineComputeDevice.totalCoreCount: Int { get }                       .../mlneuralenginecomputedevice/totalcorecount
//   MLModelConfiguration.computeUnits: MLComputeUnits; MLComputeUnits cpuOnly 0, cpuAndGPU 1,
//                               all 2, cpuAndNeuralEngine 3                        .../mlcomputeunits
//   MLPredictionOptions.outputBackings: [String : Any] { get set }  (macOS 11)     .../mlpredictionoptions/outputbackings
//   MLModelDescription.inputDescriptionsByName / outputDescriptionsByName: [String : MLFeatureDescription];
//                               metadata: [MLModelMetadataKey : Any]               .../mlmodeldescription/metadata
//   MLModelMetadataKey.creatorDefinedKey (a [String: String] value)                .../mlmodelmetadatakey/creatordefinedkey
//   MLFeatureDescription.multiArrayConstraint: MLMultiArrayConstraint? { get }      .../mlfeaturedescription
//   MLMultiArrayConstraint.shape: [NSNumber] { get }; .dataType { get }             .../mlmultiarrayconstraint
//   MLModelConfiguration.functionName: String? { get set }  (macOS 15)           .../mlmodelconfiguration/functionname
//   MLModelAsset.init(url compiledModelURL: URL) throws  (convenience, macOS 15)  .../mlmodelasset/init(url:)-43988
//   MLModelAsset.functionNames(completionHandler handler: @escaping @Sendable ([String]?, (any Error)?) -> Void)
//                               macOS 15; empty for a model without functions   .../mlmodelasset/functionnames(completionhandler:)

import Dispatch
import Foundation

public enum MLComputeUnits: Int {
    case cpuOnly = 0
    case cpuAndGPU = 1
    case all = 2
    case cpuAndNeuralEngine = 3
}

public class MLModelConfiguration {
    public var computeUnits: MLComputeUnits = .all
    private var selectedFunction: String?

    public init() {}

    @available(macOS 15.0, iOS 18.0, *)
    public var functionName: String? {
        get { selectedFunction }
        set { selectedFunction = newValue }
    }
}

public class MLModelAsset {
    let compiledURL: URL

    init(compiled url: URL) {
        compiledURL = url
    }

    @available(macOS 15.0, iOS 18.0, *)
    public convenience init(url compiledModelURL: URL) throws {
        _ = try StandInSpec.read(from: compiledModelURL)
        self.init(compiled: compiledModelURL)
    }

    @available(macOS 15.0, iOS 18.0, *)
    public func functionNames(completionHandler handler: @escaping @Sendable ([String]?, (any Error)?) -> Void) {
        let url = compiledURL
        DispatchQueue.global().async {
            do {
                handler(try StandInSpec.read(from: url).functionNames, nil)
            } catch {
                handler(nil, error)
            }
        }
    }
}

public class MLCPUComputeDevice {}

public class MLGPUComputeDevice {}

public class MLNeuralEngineComputeDevice {
    public let totalCoreCount: Int

    init(totalCoreCount: Int) {
        self.totalCoreCount = totalCoreCount
    }
}

public enum MLComputeDevice {
    case cpu(MLCPUComputeDevice)
    case gpu(MLGPUComputeDevice)
    case neuralEngine(MLNeuralEngineComputeDevice)
}

public class MLPredictionOptions {
    public var outputBackings: [String: Any] = [:]

    public init() {}
}

public struct MLModelMetadataKey: Hashable, RawRepresentable {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public static let creatorDefinedKey = MLModelMetadataKey(rawValue: "MLModelCreatorDefinedKey")
}

public class MLMultiArrayConstraint {
    public let shape: [NSNumber]
    public let dataType: MLMultiArrayDataType

    init(shape: [Int], dataType: MLMultiArrayDataType) {
        self.shape = shape.map { NSNumber(value: $0) }
        self.dataType = dataType
    }
}

public class MLFeatureDescription {
    public let name: String
    public let multiArrayConstraint: MLMultiArrayConstraint?

    init(name: String, constraint: MLMultiArrayConstraint?) {
        self.name = name
        multiArrayConstraint = constraint
    }
}

public class MLModelDescription {
    public let inputDescriptionsByName: [String: MLFeatureDescription]
    public let outputDescriptionsByName: [String: MLFeatureDescription]
    public let metadata: [MLModelMetadataKey: Any]

    init(spec: StandInSpec.Signature, metadata custom: [String: String]?) {
        func describe(_ tensors: [StandInSpec.Tensor]) -> [String: MLFeatureDescription] {
            Dictionary(uniqueKeysWithValues: tensors.map { tensor in
                let constraint = tensor.multiArrayType.map { MLMultiArrayConstraint(shape: tensor.shape, dataType: $0) }
                return (tensor.name, MLFeatureDescription(name: tensor.name, constraint: constraint))
            })
        }
        inputDescriptionsByName = describe(spec.inputs)
        outputDescriptionsByName = describe(spec.outputs)
        metadata = [.creatorDefinedKey: custom ?? [:]]
    }
}

public class MLModel {
    public let modelDescription: MLModelDescription
    let spec: StandInSpec
    let signature: StandInSpec.Signature  // the tensors of the loaded function
    let computeUnits: MLComputeUnits

    @available(macOS 13.0, *)
    public class func compileModel(at url: URL, completionHandler handler: @escaping (Result<URL, any Error>) -> Void) {
        DispatchQueue.global().async {
            handler(Result { try StandInBehaviour.compile(url) })
        }
    }

    public init(contentsOf url: URL, configuration: MLModelConfiguration) throws {
        var function: String? = nil
        if #available(macOS 15.0, iOS 18.0, *) { function = configuration.functionName }
        (spec, signature) = try StandInBehaviour.load(url, computeUnits: configuration.computeUnits, function: function)
        computeUnits = configuration.computeUnits
        modelDescription = MLModelDescription(spec: signature, metadata: spec.metadata)
    }

    public func prediction(from input: MLFeatureProvider, options: MLPredictionOptions) throws -> MLFeatureProvider {
        try StandInBehaviour.predict(spec, signature, input: input, backings: options.outputBackings)
    }

    @available(macOS 14.0, *)
    public class var availableComputeDevices: [MLComputeDevice] {
        let cores = Int(ProcessInfo.processInfo.environment["MACB_STANDIN_ANE_CORES"] ?? "") ?? 16
        let base: [MLComputeDevice] = [.cpu(MLCPUComputeDevice())]
        return cores > 0 ? base + [.neuralEngine(MLNeuralEngineComputeDevice(totalCoreCount: cores))] : base
    }
}
