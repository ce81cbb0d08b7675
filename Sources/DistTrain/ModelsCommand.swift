import ArgumentParser
import Foundation
import Models

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "List the models with their parameter counts and forward cost.")

    func run() throws {
        print("model         instance             class              parameters  forward MACs/sample  sample  options")
        for kind in ModelArchitecture.all {
            for instance in kind.instances {
                // Capacity 1: the activations are small next to the parameters.
                let model = kind.build(instance, batchCapacity: 1)
                let macs = Double(model.multiplyAccumulatesPerSample)
                let macsText = macs >= 1e7 ? String(format: "%.3f G", macs / 1e9) : String(format: "%.3f K", macs / 1e3)
                let shape = instance.sampleShape.map(String.init).joined(separator: "×")
                print(kind.name.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + instance.name.padding(toLength: 21, withPad: " ", startingAt: 0)
                      + kind.className.padding(toLength: 19, withPad: " ", startingAt: 0)
                      + String(model.parameterTable.totalCount.formatted()).leftPadded(10)
                      + macsText.leftPadded(21) + "  " + shape.padding(toLength: 8, withPad: " ", startingAt: 0)
                      + instance.options.commandLine)
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
