/// A failure reading or converting an input file, or writing an output file. The description
/// always names the file, so a command can print it as one line.
public struct IOError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
    /// "`path`: `message`".
    public init(path: String, _ message: String) { self.description = "\(path): \(message)" }
}
