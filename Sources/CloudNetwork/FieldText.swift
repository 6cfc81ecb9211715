import CloudCore

/// The text a user writes to one attribute file (`echo 10.0.0.0/24 > cidr`), decoded the
/// same way for every file: valid UTF-8, no NUL byte, at most one trailing newline removed,
/// surrounding spaces and tabs trimmed.
public enum FieldText {
    /// Decodes `bytes` written to the file `field`. Throws `EINVAL` naming the field for
    /// NUL bytes and invalid UTF-8.
    public static func decode(_ bytes: some Collection<UInt8>, field: String) throws(CloudError) -> String {
        guard !bytes.contains(0) else { throw CloudError.invalid("\(field): the value contains a NUL byte") }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CloudError.invalid("\(field): the value is not valid UTF-8")
        }
        return trimmed(text.hasSuffix("\n") ? String(text.dropLast()) : text)
    }

    /// Like `decode`, for files holding exactly one value: also refuses a value spread over
    /// several lines.
    public static func singleValue(_ bytes: some Collection<UInt8>, field: String) throws(CloudError) -> String {
        let text = try decode(bytes, field: field)
        guard !text.contains(where: \.isNewline) else {
            throw CloudError.invalid("\(field): one value per file, but the text has several lines")
        }
        return text
    }

    static func trimmed(_ s: String) -> String {
        var sub = Substring(s)
        while let c = sub.first, c == " " || c == "\t" || c == "\r" { sub = sub.dropFirst() }
        while let c = sub.last, c == " " || c == "\t" || c == "\r" { sub = sub.dropLast() }
        return String(sub)
    }
}
