import Testing
import IO
import Tensor
@testable import Models

/// A model's group in zoo-models.h5 (made by Tests/Fixtures/generate/zoo_models.py): PyTorch's tensors by
/// state_dict name under GROUP/params, GROUP/grads and GROUP/<buffers> (MyUNet's frozen table is under
/// "frozen", BatchNorm statistics under "buffers"). One place that loads them into a model and compares names.
struct GoldenModelGroup {
    let file: HDF5File
    let name: String
    var buffersGroup = "buffers"

    /// PyTorch's parameters and buffers into `model`; every parameter's shape must be PyTorch's.
    func load(into model: TrainableModel) throws {
        for (group, table, buffer) in [("params", model.parameterTable, model.parameters), (buffersGroup, model.bufferTable, model.buffers)] {
            for e in table.entries {
                let (values, shape) = try file.read("\(name)/\(group)/\(e.name)", as: Float.self)
                #expect(shape == e.shape, "\(name): \(e.name) is \(e.shape), PyTorch's \(shape)")
                (buffer.pointer + e.offset).update(from: values, count: e.count)
            }
        }
    }

    /// The model's parameter and buffer names are exactly the group's, and its parameter and buffer
    /// counts the group's `parameter_count` and `buffer_count` attributes.
    func expectSameStateDict(as model: TrainableModel) throws {
        #expect(Set(model.parameterTable.entries.map(\.name)) == Set(try file.members(of: "\(name)/params")))
        #expect(Set(model.bufferTable.entries.map(\.name)) == Set(try file.members(of: "\(name)/\(buffersGroup)")))
        #expect(file.attribute("parameter_count", on: name) == String(model.parameterTable.totalCount))
        #expect(file.attribute("buffer_count", on: name) == String(model.bufferTable.totalCount))
    }

    /// PyTorch's gradient of parameter `entry`.
    func gradient(_ entry: String) throws -> [Float] { try file.read("\(name)/grads/\(entry)", as: Float.self).values }

    /// Every parameter's gradient in `model` against PyTorch's, relative to that tensor's largest golden
    /// entry: each within `bound`, and none a true 0 (largest entry above 1e-3) for models where no gradient
    /// is. Returns the worst error and its tensor, for the report.
    func expectGradientsMatch(_ model: TrainableModel, bound: Float, label: String) throws -> (error: Float, name: String) {
        var worst: (error: Float, name: String) = (0, "")
        for e in model.parameterTable.entries {
            let expected = try gradient(e.name), ours = entryValues(model.gradients, e)
            let scale = expected.map { abs($0) }.max()!
            #expect(scale > 1e-3, "\(e.name): PyTorch's gradient is \(scale) at most")
            let err = zip(ours, expected).map { abs($0 - $1) }.max()! / scale
            if err > worst.error { worst = (err, e.name) }
            #expect(err < bound, "\(label): gradient of \(e.name): max error \(err) relative to its largest entry")
        }
        return worst
    }
}

/// The values of one table entry in a model's flat buffer.
func entryValues(_ buffer: FloatBuffer, _ entry: ParameterEntry) -> [Float] {
    Array(UnsafeBufferPointer(start: buffer.pointer + entry.offset, count: entry.count))
}
