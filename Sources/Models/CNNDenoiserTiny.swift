extension ModelArchitecture {
    /// The seed's U-Net shrunk to base 4, depth 2 (19,593 parameters at one channel): trains in seconds,
    /// for smoke tests of a pipeline and for the test suite.
    public static let cnnTiny = unet("cnn-tiny", className: "CNNDenoiserTiny", summary: "base 4, depth 2; for smoke tests",
                                     baseChannels: 4, depth: 2)
}
