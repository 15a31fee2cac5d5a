// Load jobs. A LoadWork is one compile+load running on a background queue; a Ticket is one
// caller's handle on it. Core ML cannot stop a compile, so cancelling a ticket abandons it: the
// work runs to the end, other tickets still get its result, and a later load of the same model
// while it runs adopts it instead of starting a second compile.

import CMacb
import Dispatch

/// Nanoseconds on a monotonic clock.
func monotonicNanoseconds() -> UInt64 {
    DispatchTime.now().uptimeNanoseconds
}

final class LoadWork {
    let request: LoadRequest
    let startedAt = monotonicNanoseconds()
    private let lock = Lock()
    private var stage: Int32 = MACB_STAGE_QUEUED
    private var outcome: Result<ModelCore, ShimError>?
    private var usedCompiledCache = false
    private var tickets: [WeakTicket] = []

    init(request: LoadRequest) {
        self.request = request
    }

    var current: (stage: Int32, outcome: Result<ModelCore, ShimError>?, usedCompiledCache: Bool) {
        lock.withLock { (stage, outcome, usedCompiledCache) }
    }

    /// Registers a ticket for stage callbacks; returns the stage it should be told about now.
    func attach(_ ticket: Ticket) -> Int32 {
        lock.withLock {
            tickets.append(WeakTicket(ticket: ticket))
            return stage
        }
    }

    /// Runs on the background queue: the whole compile + load + prewarm.
    func run(on backend: Backend) {
        do {
            let loaded = try backend.load(request) { [self] stage in enter(stage) }
            finish(.success(ModelCore(loaded: loaded, computeUnits: request.computeUnits)))
        } catch {
            finish(.failure(ShimError.wrapping(error, status: MACB_ERR_LOAD_FAILED, context: "loading failed")))
        }
    }

    private func enter(_ newStage: Int32) {
        let targets: [Ticket] = lock.withLock {
            stage = newStage
            return tickets.compactMap { $0.ticket }
        }
        targets.forEach { $0.deliver(newStage) }
    }

    private func finish(_ result: Result<ModelCore, ShimError>) {
        let finalStage: Int32
        if case .success = result { finalStage = MACB_STAGE_READY } else { finalStage = MACB_STAGE_FAILED }
        let targets: [Ticket] = lock.withLock {
            outcome = result
            stage = finalStage
            if case .success(let core) = result { usedCompiledCache = core.usedCompiledCache }
            return tickets.compactMap { $0.ticket }
        }
        JobRegistry.shared.remove(self)
        for ticket in targets {
            ticket.deliver(finalStage)
            ticket.wake()
        }
    }
}

private struct WeakTicket {
    weak var ticket: Ticket?
}

/// One caller's handle on a LoadWork (what macb_job points to).
final class Ticket {
    let work: LoadWork
    let adopted: Bool
    private let lock = Lock()
    private var cancelled = false
    private var modelTaken = false
    private var callback: macb_stage_fn?
    private let userData: UnsafeMutableRawPointer?
    private var lastDelivered: Int32 = -1
    private let wakeup = DispatchSemaphore(value: 0)

    init(work: LoadWork, adopted: Bool, callback: macb_stage_fn?, userData: UnsafeMutableRawPointer?) {
        self.work = work
        self.adopted = adopted
        self.callback = callback
        self.userData = userData
    }

    /// Calls the caller's callback, under the lock so cancel/free wait for a call in progress.
    /// Stages only move forward; a stage already reported is not reported again.
    func deliver(_ stage: Int32) {
        lock.withLock {
            guard !cancelled, let callback, stage > lastDelivered else { return }
            lastDelivered = stage
            callback(userData, stage)
        }
    }

    func wake() {
        wakeup.signal()
    }

    /// Abandons the work for this handle; returns at once (after a callback in progress, if any).
    func cancel() {
        lock.withLock {
            cancelled = true
            callback = nil
        }
        wakeup.signal()
    }

    private var isCancelled: Bool { lock.withLock { cancelled } }

    /// Returns when the work is done, throws CANCELLED / TIMEOUT / the work's failure.
    func wait(timeoutMilliseconds: UInt32) throws {
        let deadline = DispatchTime.now() + .milliseconds(Int(timeoutMilliseconds))
        var timedOut = false
        while true {
            if isCancelled {
                throw ShimError(status: MACB_ERR_CANCELLED,
                                message: "the load was cancelled; Core ML's work is abandoned, not stopped")
            }
            let state = work.current
            switch state.outcome {
            case .success?: return
            case .failure(let error)?: throw error
            case nil: break
            }
            if timedOut {
                throw ShimError(status: MACB_ERR_TIMEOUT,
                                message: "still loading after \(timeoutMilliseconds) ms (stage \(stageName(state.stage)))")
            }
            // One last look at the state after the deadline passes, then report the timeout.
            timedOut = wakeup.wait(timeout: deadline) == .timedOut
        }
    }

    func takeModel() throws -> ModelCore {
        try lock.withLock {
            if cancelled { throw ShimError(status: MACB_ERR_CANCELLED, message: "the load was cancelled") }
            if modelTaken { throw ShimError.state("the model was already taken from this job") }
            guard case .success(let core)? = work.current.outcome else {
                throw ShimError.state("the job has no model: wait until macb_job_wait returns MACB_OK")
            }
            modelTaken = true
            return core
        }
    }

    var state: macb_job_state {
        let current = work.current
        var result = macb_job_state()
        result.struct_size = UInt32(MemoryLayout<macb_job_state>.size)
        result.stage = isCancelled ? MACB_STAGE_CANCELLED : current.stage
        result.adopted = adopted ? 1 : 0
        result.used_compiled_cache = current.usedCompiledCache ? 1 : 0
        result.elapsed_s = Double(monotonicNanoseconds() &- work.startedAt) / 1e9
        return result
    }
}

func stageName(_ stage: Int32) -> String {
    switch stage {
    case MACB_STAGE_QUEUED: return "queued"
    case MACB_STAGE_COMPILING: return "compiling"
    case MACB_STAGE_LOADING: return "loading"
    case MACB_STAGE_PREWARMING: return "prewarming"
    case MACB_STAGE_READY: return "ready"
    case MACB_STAGE_FAILED: return "failed"
    default: return "cancelled"
    }
}

/// The loads running in this process, by model: the "one compile per model at a time" rule.
final class JobRegistry {
    static let shared = JobRegistry()
    private let lock = Lock()
    private var running: [String: LoadWork] = [:]

    /// A ticket on the running load of this model, or on a new one started now.
    func begin(_ request: LoadRequest, callback: macb_stage_fn?, userData: UnsafeMutableRawPointer?) -> Ticket {
        let (work, adopted): (LoadWork, Bool) = lock.withLock {
            if let existing = running[request.key] { return (existing, true) }
            let fresh = LoadWork(request: request)
            running[request.key] = fresh
            return (fresh, false)
        }
        let ticket = Ticket(work: work, adopted: adopted, callback: callback, userData: userData)
        ticket.deliver(work.attach(ticket))
        if !adopted {
            // A serial queue of its own per load: libdispatch gives each one a thread even when
            // abandoned compiles block others. One shared concurrent queue is limited to the core
            // count, so on a 2-core machine two abandoned compiles left every new load queued.
            DispatchQueue(label: "macb.load", qos: .userInitiated).async { work.run(on: currentBackend) }
        }
        return ticket
    }

    func remove(_ work: LoadWork) {
        lock.withLock {
            if running[work.request.key] === work { running[work.request.key] = nil }
        }
    }
}
