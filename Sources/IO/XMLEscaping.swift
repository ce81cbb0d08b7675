extension String {
    /// The text with `&`, `<`, `>`, `"` and `'` replaced by entities: safe inside XML/HTML text and
    /// attribute values (the report is XHTML-compatible, so an XML parser must accept it). Control
    /// characters XML 1.0 forbids become U+FFFD.
    var xmlEscaped: String {
        var out = ""
        out.reserveCapacity(utf8.count)
        for c in self {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r\n", "\r": out.append(c)
            default: out.append(c.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0xFFFE || $0.value == 0xFFFF } ? "\u{FFFD}" : c)
            }
        }
        return out
    }
}
