import CGIF

/// A GIF read back whole with giflib's DGifSlurp, independently of the code that wrote it.
public struct GIFProbe {
    public let width, height: Int
    /// Each frame's pixels as (r, g, b), row-major, through its local or the global palette.
    public let frames: [[(r: UInt8, g: UInt8, b: UInt8)]]
    /// Each frame's delay in hundredths of a second (nil without a graphics control block).
    public let delays: [Int?]
    /// The NETSCAPE2.0 loop count (0: forever), nil without that extension.
    public let loopCount: Int?
    public let globalPaletteSize: Int

    public init(_ path: String) throws {
        var status: Int32 = 0
        guard let gif = DGifOpenFileName(path, &status) else { throw GIFProbeError(description: "\(path): cannot open (giflib error \(status))") }
        defer { DGifCloseFile(gif, nil) }
        guard DGifSlurp(gif) == GIF_OK else { throw GIFProbeError(description: "\(path): DGifSlurp failed (giflib error \(gif.pointee.Error))") }
        let g = gif.pointee
        width = Int(g.SWidth); height = Int(g.SHeight)
        globalPaletteSize = g.SColorMap.map { Int($0.pointee.ColorCount) } ?? 0
        var frames: [[(r: UInt8, g: UInt8, b: UInt8)]] = [], delays: [Int?] = []
        var loop: Int?
        for i in 0..<Int(g.ImageCount) {
            let image = g.SavedImages[i]
            let d = image.ImageDesc
            guard let map = d.ColorMap ?? g.SColorMap else { throw GIFProbeError(description: "\(path): frame \(i) has no palette") }
            let count = Int(d.Width) * Int(d.Height)
            frames.append((0..<count).map { p in
                let c = map.pointee.Colors[Int(image.RasterBits[p])]
                return (c.Red, c.Green, c.Blue)
            })
            var control = GraphicsControlBlock()
            delays.append(DGifSavedExtensionToGCB(gif, Int32(i), &control) == GIF_OK ? Int(control.DelayTime) : nil)
            // giflib keeps an application extension with the image it precedes: its identifier block, then data sub-blocks.
            let blocks = (0..<Int(image.ExtensionBlockCount)).map { image.ExtensionBlocks[$0] }
            for (k, block) in blocks.enumerated() where block.Function == APPLICATION_EXT_FUNC_CODE && block.ByteCount == 11 {
                let name = String(decoding: UnsafeBufferPointer(start: block.Bytes, count: 11), as: UTF8.self)
                if name == "NETSCAPE2.0", k + 1 < blocks.count, blocks[k + 1].ByteCount == 3 {
                    let data = blocks[k + 1].Bytes!
                    loop = Int(data[1]) | Int(data[2]) << 8
                }
            }
        }
        self.frames = frames; self.delays = delays; loopCount = loop
    }
}

public struct GIFProbeError: Error, CustomStringConvertible { public let description: String }
