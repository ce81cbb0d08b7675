import ArgumentParser
import Foundation
import Models

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "List the models with their parameter, frozen, buffer and BatchNorm counts and exact forward multiply-accumulates.")

    func run() throws {
        print("model         instance             class              parameters    frozen   buffers  BN  forward MACs/sample  sample  options")
        for kind in ModelArchitecture.all {
            for instance in kind.instances {
                // Capacity 1: the activations are small next to the parameters.
                let model = kind.build(instance, batchCapacity: 1)
                // Frozen: constant tables (MyUNet's time embedding); buffers: BatchNorm running means and
                // variances, two per BatchNorm layer (ZOO.md §0's columns).
                let batchNorms = model.bufferTable.entries.filter { $0.name.hasSuffix(".running_mean") }.count
                let shape = instance.sampleShape.map(String.init).joined(separator: "×")
                print(kind.name.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + instance.name.padding(toLength: 21, withPad: " ", startingAt: 0)
                      + kind.className.padding(toLength: 19, withPad: " ", startingAt: 0)
                      + String(model.parameterTable.totalCount.formatted()).leftPadded(10)
                      + String(model.bufferTable.frozenCount.formatted()).leftPadded(10)
                      + String(model.bufferTable.unfrozenCount.formatted()).leftPadded(10) + String(batchNorms).leftPadded(4)
                      + String(model.multiplyAccumulatesPerSample.formatted()).leftPadded(21) + "  " + shape.padding(toLength: 8, withPad: " ", startingAt: 0)
                      + instance.options.commandLine)
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
