import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A document parsed by Foundation's XMLParser (libxml2): proof that it is well-formed XML, and its
/// elements in document order, for tests that count them.
public struct XMLProbe {
    public struct Element {
        public let name: String
        public let attributes: [String: String]
        /// Indices (in `elements`) of the elements it is inside, outermost first.
        public let ancestors: [Int]
        /// The text directly inside it (not inside its children).
        public var text: String
    }

    public let elements: [Element]

    /// Throws, naming the line and the parser's message, unless `document` is well-formed XML.
    public init(_ document: String) throws {
        let parser = XMLParser(data: Data(document.utf8))
        let collector = Collector()
        parser.delegate = collector
        guard parser.parse() else {
            let reason = parser.parserError.map { "\($0)" } ?? "unknown error"
            throw XMLProbeError(description: "not well-formed XML at line \(parser.lineNumber), column \(parser.columnNumber): \(reason)")
        }
        elements = collector.elements
    }

    /// Every element named `name` (inside the element at index `within`, when given).
    public func all(_ name: String, within: Int? = nil) -> [Element] {
        elements.filter { $0.name == name && (within.map($0.ancestors.contains) ?? true) }
    }

    /// Indices of the elements named `name`.
    public func indices(of name: String) -> [Int] { elements.indices.filter { elements[$0].name == name } }
}

public struct XMLProbeError: Error, CustomStringConvertible { public let description: String }

private final class Collector: NSObject, XMLParserDelegate {
    var elements: [XMLProbe.Element] = []
    private var open: [Int] = []

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append(.init(name: name, attributes: attributes, ancestors: open, text: ""))
        open.append(elements.count - 1)
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let i = open.last { elements[i].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        open.removeLast()
    }
}
