// The C entry points of a loaded model: its description, metadata and info, predict, free.

import CMacb

@_cdecl("macb_model_feature_count")
public func exportFeatureCount(_ model: OpaquePointer?, _ role: Int32, _ outCount: UnsafeMutablePointer<Int32>?) -> Int32 {
    runExport(nil, 0) {
        guard let outCount else { throw ShimError.invalid("out_count is NULL") }
        outCount.pointee = Int32(try borrowed(model, as: ModelCore.self, "model").features(role: role).count)
    }
}

@_cdecl("macb_model_feature")
public func exportFeature(
    _ model: OpaquePointer?, _ role: Int32, _ index: Int32, _ out: UnsafeMutablePointer<macb_feature>?
) -> Int32 {
    runExport(nil, 0) {
        guard let out else { throw ShimError.invalid("out is NULL") }
        try checkStructSize(out.pointee.struct_size, macb_feature.self, "macb_feature")
        var feature = try borrowed(model, as: ModelCore.self, "model").describe(role: role, index: Int(index))
        feature.struct_size = out.pointee.struct_size
        out.pointee = feature
    }
}

@_cdecl("macb_model_metadata_count")
public func exportMetadataCount(_ model: OpaquePointer?, _ outCount: UnsafeMutablePointer<Int32>?) -> Int32 {
    runExport(nil, 0) {
        guard let outCount else { throw ShimError.invalid("out_count is NULL") }
        outCount.pointee = Int32(try borrowed(model, as: ModelCore.self, "model").metadataCount)
    }
}

@_cdecl("macb_model_metadata")
public func exportMetadata(
    _ model: OpaquePointer?, _ index: Int32,
    _ outKey: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ outValue: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    runExport(nil, 0) {
        guard let outKey, let outValue else { throw ShimError.invalid("out_key and out_value must not be NULL") }
        let (key, value) = try borrowed(model, as: ModelCore.self, "model").metadataEntry(Int(index))
        outKey.pointee = key
        outValue.pointee = value
    }
}

@_cdecl("macb_model_info_get")
public func exportModelInfo(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<macb_model_info>?) -> Int32 {
    runExport(nil, 0) {
        guard let out else { throw ShimError.invalid("out is NULL") }
        try checkStructSize(out.pointee.struct_size, macb_model_info.self, "macb_model_info")
        var info = try borrowed(model, as: ModelCore.self, "model").info
        info.struct_size = out.pointee.struct_size
        out.pointee = info
    }
}

@_cdecl("macb_predict")
public func exportPredict(
    _ model: OpaquePointer?,
    _ inputs: UnsafeMutablePointer<macb_tensor>?, _ inputCount: Int,
    _ outputs: UnsafeMutablePointer<macb_tensor>?, _ outputCount: Int,
    _ fault: UnsafeMutablePointer<macb_tensor_fault>?, _ msg: UnsafeMutablePointer<CChar>?, _ msgSize: Int
) -> Int32 {
    var failure: TensorFault? = nil
    let status = runExport(msg, msgSize) {
        if let fault { try checkStructSize(fault.pointee.struct_size, macb_tensor_fault.self, "macb_tensor_fault") }
        let core = try borrowed(model, as: ModelCore.self, "model")
        do {
            try core.predict(inputs: inputs, inputCount: inputCount, outputs: outputs, outputCount: outputCount)
        } catch let error as ShimError {
            failure = error.fault
            throw error
        }
    }
    writeFault(failure, to: fault)
    return status
}

@_cdecl("macb_model_free")
public func exportModelFree(_ model: OpaquePointer?) {
    guard let model else { return }
    withPool {
        Unmanaged<ModelCore>.fromOpaque(UnsafeRawPointer(model)).release()
    }
}
