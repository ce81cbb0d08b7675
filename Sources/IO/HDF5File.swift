import CHDF5

/// A failure reading or writing an HDF5 file, naming the file and the object.
public struct HDF5Error: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Element types this project stores, mapped to HDF5's native memory types.
public protocol HDF5Element { static var hdf5MemoryType: hid_t { get } }
extension Float: HDF5Element { public static var hdf5MemoryType: hid_t { chdf5_native_float() } }
extension Double: HDF5Element { public static var hdf5MemoryType: hid_t { chdf5_native_double() } }
extension Int64: HDF5Element { public static var hdf5MemoryType: hid_t { chdf5_native_int64() } }
extension Int32: HDF5Element { public static var hdf5MemoryType: hid_t { chdf5_native_int32() } }
extension UInt8: HDF5Element { public static var hdf5MemoryType: hid_t { chdf5_native_uint8() } }

/// An open HDF5 file: whole datasets and string attributes by slash-separated path.
/// Reads convert to the requested element type (HDF5 does the conversion), so a float32 file can be
/// read as Double and an int64 one as Int32.
public final class HDF5File {
    public let path: String
    private var id: hid_t

    private init(path: String, id: hid_t) { self.path = path; self.id = id }

    /// Flushes and closes the file (also done on deinit); later calls do nothing.
    public func close() throws {
        guard id >= 0 else { return }
        let status = H5Fclose(id)
        id = -1
        guard status >= 0 else { throw HDF5Error("cannot close HDF5 file \(path)") }
    }

    /// Creates (or truncates) `path` for writing.
    public static func create(_ path: String) throws -> HDF5File {
        silenceLibraryErrors()
        let id = H5Fcreate(path, chdf5_acc_trunc(), chdf5_p_default(), chdf5_p_default())
        guard id >= 0 else { throw HDF5Error("cannot create HDF5 file \(path)") }
        return HDF5File(path: path, id: id)
    }

    /// Opens an existing file, read-only unless `writable`.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        silenceLibraryErrors()
        guard H5Fis_hdf5(path) > 0 else { throw HDF5Error("\(path) is missing or is not an HDF5 file") }
        let id = H5Fopen(path, writable ? chdf5_acc_rdwr() : chdf5_acc_rdonly(), chdf5_p_default())
        guard id >= 0 else { throw HDF5Error("cannot open HDF5 file \(path)") }
        return HDF5File(path: path, id: id)
    }

    deinit { if id >= 0 { H5Fclose(id) } }

    /// why: the library prints a stack of internal errors to stderr by default; ours name the file instead.
    private static func silenceLibraryErrors() { H5Eset_auto2(chdf5_e_default(), nil, nil) }

    /// True when an object (group or dataset) exists at `name`.
    public func contains(_ name: String) -> Bool {
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(id, prefix, chdf5_p_default()) <= 0 { return false }
        }
        return !prefix.isEmpty
    }

    /// Names of the direct members of a group, sorted.
    public func members(of group: String = "/") throws -> [String] {
        let g = H5Gopen2(id, group, chdf5_p_default())
        guard g >= 0 else { throw HDF5Error("\(path): no group \(group)") }
        defer { H5Gclose(g) }
        var names: [String] = []
        var info = H5G_info_t()
        H5Gget_info(g, &info)
        for i in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, chdf5_p_default())
            var bytes = [CChar](repeating: 0, count: Int(length) + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &bytes, bytes.count, chdf5_p_default())
            names.append(String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names.sorted()
    }

    /// Writes a dataset of `shape` (empty for a scalar), creating intermediate groups. With `checksum`,
    /// the data is stored as one chunk with HDF5's Fletcher-32 filter, so a read of damaged bytes fails.
    public func write<T: HDF5Element>(_ name: String, _ values: UnsafeBufferPointer<T>, shape: [Int],
                                      checksum: Bool = false) throws {
        precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
        var dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), &dims, nil)
        defer { H5Sclose(space) }
        let links = H5Pcreate(chdf5_p_link_create())
        defer { H5Pclose(links) }
        H5Pset_create_intermediate_group(links, 1)
        let creation = H5Pcreate(chdf5_p_dataset_create())
        defer { H5Pclose(creation) }
        if checksum && !shape.isEmpty && values.count > 0 {
            var chunk = shape.map { hsize_t($0) }
            H5Pset_chunk(creation, Int32(shape.count), &chunk)
            H5Pset_fletcher32(creation)
        }
        let d = H5Dcreate2(id, name, T.hdf5MemoryType, space, links, creation, chdf5_p_default())
        guard d >= 0 else { throw HDF5Error("\(path): cannot create dataset \(name)") }
        defer { H5Dclose(d) }
        guard H5Dwrite(d, T.hdf5MemoryType, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), values.baseAddress) >= 0 else {
            throw HDF5Error("\(path): cannot write dataset \(name)")
        }
    }

    public func write<T: HDF5Element>(_ name: String, _ values: [T], shape: [Int]? = nil, checksum: Bool = false) throws {
        try values.withUnsafeBufferPointer { try write(name, $0, shape: shape ?? [values.count], checksum: checksum) }
    }

    /// The dimensions of dataset `name`.
    public func shape(of name: String) throws -> [Int] {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        return try dimensions(d, name)
    }

    /// Reads a whole dataset converted to `T`, with its shape.
    public func read<T: HDF5Element>(_ name: String, as type: T.Type = T.self) throws -> (values: [T], shape: [Int]) {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        let shape = try dimensions(d, name)
        let count = shape.reduce(1, *)
        var values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = H5Dread(d, T.hdf5MemoryType, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), buffer.baseAddress) >= 0 ? count : 0
        }
        if values.count != count { throw HDF5Error("\(path): cannot read dataset \(name) as \(T.self)") }
        values = Array(values)
        return (values, shape)
    }

    /// Reads rows [start, start + count) of the first dimension (a hyperslab) converted to `T`, into `out`,
    /// which must hold count × (product of the other dimensions) values. Only those rows are read from disk.
    public func readRows<T: HDF5Element>(_ name: String, start: Int, count: Int, into out: UnsafeMutablePointer<T>) throws {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        let shape = try dimensions(d, name)
        guard !shape.isEmpty, start >= 0, count >= 0, start + count <= shape[0] else {
            throw HDF5Error("\(path): rows \(start)..<\(start + count) are outside \(name) of shape \(shape)")
        }
        if count == 0 { return }
        let fileSpace = H5Dget_space(d)
        defer { H5Sclose(fileSpace) }
        var offset = [hsize_t](repeating: 0, count: shape.count)
        offset[0] = hsize_t(start)
        var extent = shape.map { hsize_t($0) }
        extent[0] = hsize_t(count)
        H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &offset, nil, &extent, nil)
        let memorySpace = H5Screate_simple(Int32(shape.count), &extent, nil)
        defer { H5Sclose(memorySpace) }
        guard H5Dread(d, T.hdf5MemoryType, memorySpace, fileSpace, chdf5_p_default(), out) >= 0 else {
            throw HDF5Error("\(path): cannot read rows \(start)..<\(start + count) of \(name) as \(T.self)")
        }
    }

    /// Bytes the file really holds for dataset `name`, and whether it is stored contiguously (uncompressed):
    /// then a header claiming more than it holds is damaged or crafted.
    public func storage(of name: String) throws -> (bytes: Int, contiguous: Bool) {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        let plist = H5Dget_create_plist(d)
        defer { H5Pclose(plist) }
        return (Int(H5Dget_storage_size(d)), H5Pget_layout(plist) == H5D_CONTIGUOUS)
    }

    /// The stored element type of dataset `name`, as NumPy spells it: "uint8", "float32", "int64", …
    public func elementType(of name: String) throws -> String {
        let d = try openDataset(name)
        defer { H5Dclose(d) }
        let type = H5Dget_type(d)
        defer { H5Tclose(type) }
        let size = H5Tget_size(type) * 8
        switch H5Tget_class(type) {
        case H5T_FLOAT: return "float\(size)"
        case H5T_INTEGER: return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + "\(size)"
        case H5T_STRING: return "string"
        default: return "other"
        }
    }

    /// Writes a string attribute on the object at `object` ("/" for the file).
    public func setAttribute(_ name: String, _ value: String, on object: String = "/") throws {
        let type = H5Tcopy(chdf5_c_s1())
        defer { H5Tclose(type) }
        H5Tset_size(type, max(value.utf8.count, 1))
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        if H5Aexists_by_name(id, object, name, chdf5_p_default()) > 0 { H5Adelete_by_name(id, object, name, chdf5_p_default()) }
        let a = H5Acreate_by_name(id, object, name, type, space, chdf5_p_default(), chdf5_p_default(), chdf5_p_default())
        guard a >= 0 else { throw HDF5Error("\(path): cannot create attribute \(name) on \(object)") }
        defer { H5Aclose(a) }
        var bytes = Array(value.utf8)
        if bytes.isEmpty { bytes = [0] }
        guard H5Awrite(a, type, bytes) >= 0 else { throw HDF5Error("\(path): cannot write attribute \(name)") }
    }

    /// Reads a string attribute, or nil when it is absent.
    public func attribute(_ name: String, on object: String = "/") -> String? {
        guard H5Aexists_by_name(id, object, name, chdf5_p_default()) > 0 else { return nil }
        let a = H5Aopen_by_name(id, object, name, chdf5_p_default(), chdf5_p_default())
        guard a >= 0 else { return nil }
        defer { H5Aclose(a) }
        let fileType = H5Aget_type(a)
        defer { H5Tclose(fileType) }
        guard H5Tget_class(fileType) == H5T_STRING, H5Tis_variable_str(fileType) == 0 else { return nil }
        let size = H5Tget_size(fileType)
        let memType = H5Tcopy(chdf5_c_s1())
        defer { H5Tclose(memType) }
        H5Tset_size(memType, size + 1)
        var bytes = [UInt8](repeating: 0, count: size + 1)
        guard H5Aread(a, memType, &bytes) >= 0 else { return nil }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private func openDataset(_ name: String) throws -> hid_t {
        guard contains(name) else { throw HDF5Error("\(path): no dataset \(name)") }
        let d = H5Dopen2(id, name, chdf5_p_default())
        guard d >= 0 else { throw HDF5Error("\(path): \(name) is not a dataset") }
        return d
    }

    private func dimensions(_ d: hid_t, _ name: String) throws -> [Int] {
        let space = H5Dget_space(d)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { throw HDF5Error("\(path): cannot read the shape of \(name)") }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.prefix(rank).map { Int($0) }
    }
}
