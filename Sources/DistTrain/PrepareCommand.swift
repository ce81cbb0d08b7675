import ArgumentParser
import Foundation
import IO

/// Inputs `prepare` converts into the dataset layout.
enum PrepareSource: String, CaseIterable, ExpressibleByArgument {
    case fashionMNIST = "fashion-mnist"
    case idx, npy
    case cifar10
    case pngFolder = "png-folder"
    case emoji
    case twoMoons = "two-moons"
    case swissRoll = "swiss-roll"
    case gaussianMixture = "gaussian-mixture"
    case lenses

    var toySet: ToySet? { ToySet(rawValue: rawValue) }
    var isImages: Bool { toySet == nil }
    /// Generated from --count and --seed rather than read from --input.
    var isGenerated: Bool { toySet != nil || self == .lenses }
}

enum ChannelLayoutOption: String, CaseIterable, ExpressibleByArgument {
    case auto, nchw, nhwc
}

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Convert images (Fashion-MNIST, IDX, .npy, CIFAR-10 binary, a PNG folder, an emoji font) into a dataset file, or generate one (2-D toy sets, strong-lensing images).",
        discussion: """
            Writes /images [N, C, H, W] (uint8, or float32 for .npy float data in [−1, 1]; [N, 2] float32 for \
            toy points), /labels [N] int64 when the source has labels, and the attributes format, version, source \
            and split on "/". Files are written under a temporary name and renamed at the end.
            With --heldout F, all N indices are shuffled with --seed and the last ⌈F·N⌉ go to --heldout-out; \
            both files keep the source's order.
            Images are converted (--channels), then padded (--pad), then resampled to S×S (--resize S; they must be \
            square by then): area averaging to shrink, exact block means for integer factors; bilinear to grow.
            A PNG folder of class subfolders gets /labels (the sorted subfolder names are 0…K−1) and their names \
            in the class_names attribute. The emoji source reads the PNG bitmap glyphs of a colour font (CBDT), \
            composited on white and centred on squares.
            The lenses source simulates --count gray --size×--size images of galaxy–galaxy strong lensing (a singular \
            isothermal ellipsoid with external shear, an elliptical Sérsic source, Sérsic lens light, a Gaussian PSF, \
            noise; parameters drawn per image from --seed) and stores each image's parameters as /params [N, P] float32, \
            the column names in the param_names attribute (README "Strong-lensing images").
            Examples:
              disttrain prepare     (Fashion-MNIST → data/fashion-mnist-32.h5)
              disttrain prepare --pad 0 --out data/fashion-mnist-28.h5     (native 28×28)
              disttrain prepare --source emoji --out data/emoji-64.h5      (Noto Color Emoji, 64×64 RGB)
              disttrain prepare --source npy --input x.npy --out x.h5 --channels 3
              disttrain prepare --source cifar10 --input cifar-10-batches-bin --out c.h5
              disttrain prepare --source two-moons --count 10000 --out moons.h5
              disttrain prepare --source lenses --count 20000 --size 64 --seed 1 --out data/lenses-64.h5 --threads 2
            """)

    @Option(help: "Input kind: \(PrepareSource.allCases.map(\.rawValue).joined(separator: ", ")).")
    var source: PrepareSource = .fashionMNIST

    @Option(help: ArgumentHelp(
        "Input file or folder (repeat for several CIFAR-10 batch files).",
        discussion: "fashion-mnist: the images IDX file (default \(FashionMNIST.trainImages)); idx: the images file; npy: the .npy file; cifar10: batch files or a directory of data_batch_*.bin; png-folder: the folder of PNGs, or of class subfolders of PNGs; emoji: the font (default \(EmojiFontReader.notoColorEmoji)).",
        valueName: "path"))
    var input: [String] = []

    @Option(help: ArgumentHelp("Labels IDX file (fashion-mnist: default the labels file beside the images; idx: none).", valueName: "path"))
    var labels: String?

    @Option(help: ArgumentHelp("Output HDF5 file (required, except for fashion-mnist: \(FashionMNIST.defaultOutput)).", valueName: "path"))
    var out: String?

    @Option(help: "Pixels of black padding on each side (default 2 for fashion-mnist, else 0).")
    var pad: Int?

    @Option(help: ArgumentHelp(
        "Resample every image to S×S after the padding: area averaging to shrink, bilinear to grow (default \(EmojiFontReader.defaultSize) for emoji, else the source's size).",
        valueName: "S"))
    var resize: Int?

    @Option(help: "Output channels, 1 or 3 (gray ↔ RGB). Default: keep the source's (1 for fashion-mnist).")
    var channels: Int?

    @Option(help: "Axis order of a rank-4 .npy: auto, nchw or nhwc (auto: NHWC when the last dim is 1 or 3 and the second is not).")
    var layout: ChannelLayoutOption = .auto

    @Option(help: "Fraction of the images held out into a second file, in [0, 1).")
    var heldout: Double = 0

    @Option(help: ArgumentHelp("File for the held-out images (default: --out with -heldout before .h5).", valueName: "path"))
    var heldoutOut: String?

    @Option(help: "Number of points of a toy set, or of images of --source lenses (default 10000).")
    var count: Int?

    @Option(help: ArgumentHelp("Side S of the S×S images of --source lenses (default 64; at least 8, a multiple of 8 suits the U-Nets).", valueName: "S"))
    var size: Int?

    @Option(help: "Noise standard deviation of a toy set, in output units (default 0.05).")
    var noise: Double?

    @Option(help: "Threads generating --source lenses (the images do not depend on it).")
    var threads: Int = 1

    @Option(help: "Seed of the toy sets, of the lenses and of the held-out shuffle.")
    var seed: UInt64 = 0

    func validate() throws {
        let name = source.rawValue
        switch source {
        case .fashionMNIST, .emoji:
            guard input.count <= 1 else { throw ValidationError("--input: \(name) takes one \(source == .emoji ? "font" : "images") file, got \(input.count)") }
        case .idx, .npy, .pngFolder:
            guard input.count == 1 else {
                throw ValidationError("--input: --source \(name) needs exactly one \(source == .pngFolder ? "folder" : "file")\(input.isEmpty ? "" : ", got \(input.count)")")
            }
        case .cifar10:
            guard !input.isEmpty else { throw ValidationError("--input: --source cifar10 needs batch files or a directory of data_batch_*.bin") }
        case .twoMoons, .swissRoll, .gaussianMixture, .lenses:
            guard input.isEmpty else { throw ValidationError("--input is not used by --source \(name) (a generated set)") }
        }
        if labels != nil, source != .fashionMNIST, source != .idx {
            throw ValidationError("--labels is only for --source fashion-mnist or idx, not \(name)")
        }
        if out == nil, source != .fashionMNIST { throw ValidationError("--out is required for --source \(name)") }
        if let out, out.isEmpty { throw ValidationError("--out must not be empty") }
        if source == .lenses {
            // why: /params holds lengths in pixels of the simulated size; padding or resampling would falsify them.
            if pad != nil { throw ValidationError("--pad does not apply to --source lenses (its /params are in pixels; choose --size)") }
            if resize != nil { throw ValidationError("--resize does not apply to --source lenses (its /params are in pixels; use --size)") }
        }
        if let pad {
            guard source.isImages else { throw ValidationError("--pad does not apply to --source \(name) (2-D points)") }
            guard (0...4096).contains(pad) else { throw ValidationError("--pad must be in 0…4096, got \(pad)") }
        }
        if let resize {
            guard source.isImages else { throw ValidationError("--resize does not apply to --source \(name) (2-D points)") }
            guard (1...4096).contains(resize) else { throw ValidationError("--resize must be in 1…4096, got \(resize)") }
        }
        if let channels {
            guard source.isImages else { throw ValidationError("--channels does not apply to --source \(name) (2-D points)") }
            guard channels == 1 || channels == 3 else { throw ValidationError("--channels must be 1 or 3, got \(channels)") }
        }
        if layout != .auto, source != .npy { throw ValidationError("--layout applies only to --source npy") }
        guard heldout >= 0, heldout < 1 else { throw ValidationError("--heldout must be in [0, 1), got \(heldout)") }
        if let heldoutOut {
            guard heldout > 0 else { throw ValidationError("--heldout-out needs --heldout greater than 0") }
            if heldoutOut == outputPath { throw ValidationError("--heldout-out must differ from --out (\(heldoutOut))") }
        }
        if let count {
            guard source.isGenerated else { throw ValidationError("--count applies only to the generated sets (two-moons, swiss-roll, gaussian-mixture, lenses)") }
            guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        }
        if let size {
            guard source == .lenses else { throw ValidationError("--size applies only to --source lenses (resample other images with --resize)") }
            guard (8...1024).contains(size) else { throw ValidationError("--size must be in 8…1024, got \(size)") }
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if threads > 1, source != .lenses { throw ValidationError("--threads applies only to --source lenses") }
        if let noise {
            guard source.toySet != nil else { throw ValidationError("--noise applies only to the toy sets (two-moons, swiss-roll, gaussian-mixture)") }
            guard noise >= 0, noise.isFinite else { throw ValidationError("--noise must be ≥ 0, got \(noise)") }
        }
    }

    var outputPath: String { out ?? FashionMNIST.defaultOutput }

    func run() throws {
        let dataSource: DatasetSource
        switch source {
        case .fashionMNIST:
            let images = input.first ?? FashionMNIST.trainImages
            if input.isEmpty, !FileManager.default.fileExists(atPath: images) {
                throw IOError(path: images, "no such file — install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or pass --input")
            }
            dataSource = .idx(images: images, labels: labels ?? FashionMNIST.labels(besideImages: images))
        case .idx: dataSource = .idx(images: input[0], labels: labels)
        case .npy: dataSource = .npy(input[0], layout: ArrayLayout(rawValue: layout.rawValue)!)
        case .cifar10: dataSource = .cifar10(input)
        case .pngFolder: dataSource = .pngFolder(input[0])
        case .emoji:
            let font = input.first ?? EmojiFontReader.notoColorEmoji
            if input.isEmpty, !FileManager.default.fileExists(atPath: font) {
                throw IOError(path: font, "no such file — install Debian's fonts-noto-color-emoji package (apt-get install fonts-noto-color-emoji) or pass --input")
            }
            dataSource = .emoji(font)
        case .twoMoons, .swissRoll, .gaussianMixture:
            dataSource = .toy(source.toySet!, count: count ?? 10_000, noise: noise ?? 0.05, seed: seed)
        case .lenses:
            dataSource = .lenses(count: count ?? 10_000, size: size ?? 64, seed: seed, threads: threads)
        }
        var data = try dataSource.load()
        if source == .fashionMNIST { data.source = "Fashion-MNIST " + data.source }
        let options = DatasetOptions(
            pad: pad ?? (source == .fashionMNIST ? 2 : 0),
            channels: channels ?? (source == .fashionMNIST ? 1 : nil),
            heldoutFraction: heldout, heldoutPath: heldoutOut, seed: seed,
            resize: resize ?? (source == .emoji ? EmojiFontReader.defaultSize : nil))
        let summary = try DatasetWriter.write(data, to: outputPath, options: options)
        print(summary)
    }
}
