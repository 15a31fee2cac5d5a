// One function of a multi-function model (Core ML specification 9: one ML Program holding several
// functions that share weights, e.g. one per frame bucket of a vocoder). A load that names a
// function checks that the compiled model has it (MLModelAsset's function list) and sets
// MLModelConfiguration.functionName; both exist from macOS 15 / iOS 18 on, and an older OS gets
// MACB_ERR_UNAVAILABLE instead of a load of the wrong (default) function.
//
// WRITTEN BLIND: no Mac has run this code in this project. The signatures were checked against
// Apple's documentation (developer.apple.com/documentation/coreml/...):
//   MLModelConfiguration.functionName: String? { get set }               macOS 15 .../mlmodelconfiguration/functionname
//   MLModelAsset.init(url compiledModelURL: URL) throws                   macOS 15 .../mlmodelasset/init(url:)-43988
//   MLModelAsset.functionNames(completionHandler: @escaping @Sendable ([String]?, (any Error)?) -> Void)
//                         (empty for a model without functions)          macOS 15 .../mlmodelasset/functionnames(completionhandler:)
// On Linux the test-only stand-in (swift_bridge/StandIn) implements them from standin.json; it runs
// no model and proves only the shim's logic around these calls.

#if canImport(CoreML)
import CMacb
import CoreML
import Dispatch
import Foundation

enum FunctionSelection {
    /// Refuses a function name where Core ML cannot select one: called before any compile, so an older
    /// OS reports this rather than whatever compiling a specification-9 package does there.
    static func checkSupported(_ name: String?) throws {
        guard let name else { return }
        guard #available(macOS 15.0, iOS 18.0, *) else {
            throw ShimError(status: MACB_ERR_UNAVAILABLE,
                            message: "function '\(name)': selecting one function of a multi-function model needs "
                                + "macOS 15 or iOS 18 (MLModelConfiguration.functionName)")
        }
    }

    /// Sets `configuration.functionName` to `name` once the compiled model at `url` is known to have
    /// that function; nothing for a nil name (the model's default function).
    static func apply(_ name: String?, to configuration: MLModelConfiguration, model url: URL) throws {
        guard let name else { return }
        try checkSupported(name)
        guard #available(macOS 15.0, iOS 18.0, *) else { return }  // unreachable: checked just above
        let names = try functionNames(of: url)
        guard names.contains(name) else {
            let has = names.isEmpty
                ? "it is not a multi-function model" : "its functions: \(names.sorted().joined(separator: ", "))"
            throw ShimError(status: MACB_ERR_NO_FUNCTION, message: "no function '\(name)' in \(url.path) (\(has))")
        }
        configuration.functionName = name
    }

    /// The compiled model's function names, waited for on this (background) thread.
    @available(macOS 15.0, iOS 18.0, *)
    private static func functionNames(of url: URL) throws -> [String] {
        final class Outcome: @unchecked Sendable {
            var names: [String]?
            var error: Error?
        }
        let asset: MLModelAsset
        do {
            asset = try MLModelAsset(url: url)
        } catch {
            throw ShimError(status: MACB_ERR_LOAD_FAILED, message: "Core ML could not open \(url.path): \(localized(error))")
        }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        // The labelled call: Swift also imports an async `functionNames` property of the same base name.
        asset.functionNames(completionHandler: { names, error in
            outcome.names = names
            outcome.error = error
            done.signal()
        })
        done.wait()
        if let names = outcome.names { return names }
        let why = outcome.error.map(localized) ?? "no reason given"
        throw ShimError(status: MACB_ERR_LOAD_FAILED, message: "Core ML could not list the functions of \(url.path): \(why)")
    }
}
#endif
