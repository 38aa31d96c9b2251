/// The Parquet schema of a set of columns, in the layout pyarrow writes.
///
/// ```
/// required group schema {
///   optional float timestamp;
///   optional group observation.state (LIST) {      // list<float>
///     repeated group list { optional float element; }
///   }
///   optional group stats/x/min (LIST) {             // list<list<double>>
///     repeated group list {
///       optional group element (LIST) { repeated group list { optional double element; } }
///     }
///   }
///   optional binary task (STRING);
/// }
/// ```
enum Schema {
    /// The flattened (depth-first) schema elements: the root, then each column's nodes.
    static func elements(_ columns: [ParquetColumn]) -> [SchemaElement] {
        var elements = [SchemaElement(name: "schema", numChildren: Int32(columns.count))]
        for column in columns {
            var name = column.name
            for _ in 0..<column.listDepth {
                elements.append(
                    SchemaElement(name: name, repetition: .optional, numChildren: 1, convertedType: .list, logicalType: .list))
                elements.append(SchemaElement(name: "list", repetition: .repeated, numChildren: 1))
                name = "element"
            }
            let isString = column.values.physicalType == .byteArray
            elements.append(
                SchemaElement(
                    name: name, type: column.values.physicalType, repetition: .optional,
                    convertedType: isString ? .utf8 : nil, logicalType: isString ? .string : nil))
        }
        return elements
    }

    /// The leaf's path in the schema (`ColumnMetaData.path_in_schema`), e.g.
    /// `["observation.state", "list", "element"]`.
    static func path(_ column: ParquetColumn) -> [String] {
        [column.name] + Array(repeating: ["list", "element"], count: column.listDepth).joined()
    }
}
