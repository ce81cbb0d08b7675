/// Input the evaluation statistics cannot use (too few samples, mismatched dimensions, a matrix
/// LAPACK rejects). The description says what was wrong and with which sizes, as one line.
public struct EvaluationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
