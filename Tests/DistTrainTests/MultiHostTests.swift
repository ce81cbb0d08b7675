import Foundation
import IO
import Testing

/// Two "hosts" in network namespaces joined by a veth pair (cluster/netns-hosts.sh), MPI launched
/// across them through cluster/netns-agent.sh as Open MPI's ssh, TCP between hosts. A few training
/// steps with 1 and with 2 ranks per host must end with the same weights as the same world size on
/// one host. Needs root (CI has it); elsewhere it records nothing.
@Suite(.serialized) struct MultiHostTests {
    static let cluster = SlurmTests.root + "/cluster"
    static let environment = ["DISTTRAIN_NETNS_PREFIX": "dtt"]

    @Test func trainingAcrossTwoHostsMatchesOneHost() throws {
        guard getuid() == 0 else { return }
        let dir = try BinaryRunner.temporaryDirectory("multihost")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        SlurmTests.shell("'\(Self.cluster)/netns-hosts.sh' down", Self.environment)
        let up = SlurmTests.shell("'\(Self.cluster)/netns-hosts.sh' up", Self.environment)
        try #require(up.status == 0, "namespaces: \(up.output)")
        defer { SlurmTests.shell("'\(Self.cluster)/netns-hosts.sh' down", Self.environment) }
        func acrossHosts(_ arguments: String) -> (status: Int32, output: String) {
            SlurmTests.shell("cd '\(dir)' && timeout 180 '\(Self.cluster)/netns-hosts.sh' mpirun \(arguments)", Self.environment)
        }

        // The ranks really run on the two hosts.
        let names = acrossHosts("-np 2 --host dtt1,dtt2 --mca btl tcp,self hostname")
        #expect(names.status == 0 && Set(names.output.split(separator: "\n").map(String.init)) == ["dtt1", "dtt2"], "\(names.output)")

        let train = "'\(BinaryRunner.binary)' train --model cnn --data images.h5 --steps 4 --sample-count 0"
        for (ranks, hosts, transports) in [(2, "dtt1,dtt2", "tcp,self"), (4, "dtt1:2,dtt2:2", "tcp,vader,self")] {
            let batch = 8 / ranks
            let multi = acrossHosts("-np \(ranks) --host \(hosts) --mca btl \(transports) \(train) --batch-size \(batch) --out across\(ranks)")
            #expect(multi.status == 0, "\(multi.output)")
            let single = try BinaryRunner.mpirun(ranks, ["train", "--model", "cnn", "--data", "images.h5", "--steps", "4", "--sample-count", "0",
                                                         "--batch-size", String(batch), "--out", "one\(ranks)"], in: dir, timeout: 180)
            #expect(single.status == 0, "\(single.stderr)")
            let differing = try CheckpointComparison.differingArrays(
                dir + "/across\(ranks)/ckpt-00000004.h5", dir + "/one\(ranks)/ckpt-00000004.h5",
                groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq", "ranks"]).differing
            #expect(differing.isEmpty, "\(ranks) ranks across two hosts differ from one host: \(differing)")
        }
    }
}
