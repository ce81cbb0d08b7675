/// Scratch memory shared by the layers of one model. Layers run one at a time, so each states the
/// floats it needs while the model is built (`reserve`) and borrows `pointer` inside its forward or
/// backward pass; nothing survives from one layer to the next. One buffer of the largest request,
/// allocated while the model is built, never during a step.
public final class Workspace: @unchecked Sendable {
    public private(set) var count = 0
    private var storage = FloatBuffer(count: 0)

    public init() {}

    /// Makes room for `floats` (call while building the model).
    public func reserve(_ floats: Int) {
        guard floats > count else { return }
        count = floats
        storage = FloatBuffer(count: floats)
    }

    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
}
