import IO

enum CheckpointComparison {
    /// The float arrays under `groups` that are not bit-identical between checkpoints `a` and `b`, and
    /// how many were compared. (The integer arrays /ranks/rng and /ranks/data are left to the caller.)
    static func differingArrays(_ a: String, _ b: String, groups: [String]) throws -> (differing: [String], compared: Int) {
        let x = try HDF5File.open(a), y = try HDF5File.open(b)
        var differing: [String] = [], compared = 0
        for group in groups {
            for name in try x.members(of: group) where !(group == "ranks" && (name == "rng" || name == "data")) {
                let u = try x.read("\(group)/\(name)", as: Float.self).values, v = try y.read("\(group)/\(name)", as: Float.self).values
                if u.map(\.bitPattern) != v.map(\.bitPattern) { differing.append("\(group)/\(name)") }
                compared += 1
            }
        }
        return (differing, compared)
    }
}
