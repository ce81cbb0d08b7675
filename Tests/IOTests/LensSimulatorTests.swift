import Foundation
import Testing
import IO

@Suite struct LensSimulatorTests {
    /// Bilinear value of a row-major size×size image at (x, y) in the image-centre frame (0 outside).
    static func sample(_ image: UnsafePointer<Float>, size: Int, x: Double, y: Double) -> Double {
        let centre = Double(size - 1) / 2
        let fx = x + centre, fy = y + centre
        let x0 = Int(fx.rounded(.down)), y0 = Int(fy.rounded(.down))
        guard x0 >= 0, y0 >= 0, x0 + 1 < size, y0 + 1 < size else { return 0 }
        let tx = fx - Double(x0), ty = fy - Double(y0)
        func at(_ r: Int, _ c: Int) -> Double { Double(image[r * size + c]) }
        return (1 - ty) * ((1 - tx) * at(y0, x0) + tx * at(y0, x0 + 1)) + ty * ((1 - tx) * at(y0 + 1, x0) + tx * at(y0 + 1, x0 + 1))
    }

    /// For each of `angles` directions about (cx, cy): the radius (0.05-pixel steps from 2 pixels out)
    /// where the brightness along that ray is largest.
    static func ringRadii(_ image: UnsafePointer<Float>, size: Int, cx: Double, cy: Double, angles: Int = 180) -> [Double] {
        let steps = Int((Double(size) / 2 - 4) / 0.05)
        return (0..<angles).map { k in
            let phi = 2 * Double.pi * Double(k) / Double(angles)
            var best = -Double.infinity, bestRadius = 0.0
            for s in 0..<steps {
                let r = 2 + 0.05 * Double(s)
                let v = sample(image, size: size, x: cx + r * cos(phi), y: cy + r * sin(phi))
                if v > best { best = v; bestRadius = r }
            }
            return bestRadius
        }
    }

    /// The radius of the largest mean brightness over all directions (the radial profile's maximum).
    static func profilePeakRadius(_ image: UnsafePointer<Float>, size: Int, cx: Double, cy: Double) -> Double {
        var best = -Double.infinity, bestRadius = 0.0
        for s in 0..<Int((Double(size) / 2 - 4) / 0.05) {
            let r = 2 + 0.05 * Double(s)
            var mean = 0.0
            for k in 0..<360 {
                let phi = 2 * Double.pi * Double(k) / 360
                mean += sample(image, size: size, x: cx + r * cos(phi), y: cy + r * sin(phi)) / 360
            }
            if mean > best { best = mean; bestRadius = r }
        }
        return bestRadius
    }

    @Test(arguments: [(10.0, 0.0, 0.0), (14.0, 0.0, 0.0), (12.0, 1.3, -0.7)])
    func circularLensWithSourceBehindItMakesARingAtTheEinsteinRadius(_ thetaE: Double, _ lensX: Double, _ lensY: Double) {
        let p = LensParameters(einsteinRadius: thetaE, lensX: lensX, lensY: lensY, sourceX: lensX, sourceY: lensY,
                               sourceRadius: 2, sourceIndex: 1, psfSigma: 1)
        let renderer = LensRenderer(size: 64)
        let image = renderer.intensity(of: p)
        let profilePeak = Self.profilePeakRadius(image, size: 64, cx: lensX, cy: lensY)
        #expect(abs(profilePeak - thetaE) <= 1, "radial profile peaks at \(profilePeak), θ_E \(thetaE)")
        let radii = Self.ringRadii(image, size: 64, cx: lensX, cy: lensY)
        #expect(radii.allSatisfy { abs($0 - thetaE) <= 1 }, "ray maxima span \(radii.min()!)…\(radii.max()!), θ_E \(thetaE)")
        // A ring, not a spot: every direction is bright at the ring and dark at the centre.
        #expect(Self.sample(image, size: 64, x: lensX, y: lensY) < 0.01)
    }

    @Test func ellipticalLensRingFollowsTheDeflectionAndAveragesNearTheEinsteinRadius() {
        let thetaE = 12.0, q = 0.7, angle = 0.4
        let p = LensParameters(einsteinRadius: thetaE, lensAxisRatio: q, lensAngle: angle, sourceRadius: 1.5, sourceIndex: 1, psfSigma: 0.8)
        let renderer = LensRenderer(size: 64)
        let image = renderer.intensity(of: p)
        let radii = Self.ringRadii(image, size: 64, cx: 0, cy: 0)
        let mean = radii.reduce(0, +) / Double(radii.count)
        #expect(abs(mean - thetaE) <= 1, "mean ring radius \(mean), θ_E \(thetaE)")
        // α depends only on the direction φ, so a source behind the centre is brightest at ρ = α(φ)·(cos φ, sin φ).
        for (k, measured) in radii.enumerated() {
            let phi = 2 * Double.pi * Double(k) / Double(radii.count) - angle
            let a = LensSimulator.sieDeflection(x: cos(phi), y: sin(phi), einsteinRadius: thetaE, axisRatio: q)
            let expected = a.x * cos(phi) + a.y * sin(phi)
            #expect(abs(measured - expected) <= 1, "direction \(k): ring at \(measured), α·e = \(expected)")
        }
        // Elongated across the mass's major axis: farther out along the minor axis than along the major one.
        let major = LensSimulator.sieDeflection(x: 1, y: 0, einsteinRadius: thetaE, axisRatio: q).x
        let minor = LensSimulator.sieDeflection(x: 0, y: 1, einsteinRadius: thetaE, axisRatio: q).y
        #expect(major < thetaE - 0.5 && minor > thetaE + 0.5)
    }

    @Test func sieDeflectionAtUnitAxisRatioIsTheSIS() {
        let thetaE = 10.0
        let points = [(3.0, 4.0), (-7.5, 0.25), (0.0, -2.0), (1e-6, 1e-6), (30.0, -0.01)]
        for (x, y) in points {
            let r = (x * x + y * y).squareRoot()
            let sis = (thetaE * x / r, thetaE * y / r)
            for q in [1.0, 1 - 1e-12, 1 - 1e-9] {
                let a = LensSimulator.sieDeflection(x: x, y: y, einsteinRadius: thetaE, axisRatio: q)
                #expect(abs(a.x - sis.0) < 1e-7 && abs(a.y - sis.1) < 1e-7, "q \(q) at (\(x), \(y)): \(a)")
            }
            // The closed form near q = 1 approaches the same limit, and the switch between the two forms is seamless.
            let near = LensSimulator.sieDeflection(x: x, y: y, einsteinRadius: thetaE, axisRatio: 0.9999)
            #expect(abs(near.x - sis.0) < 5e-3 && abs(near.y - sis.1) < 5e-3)
            let below = LensSimulator.sieDeflection(x: x, y: y, einsteinRadius: thetaE, axisRatio: (1 - 0.99e-8).squareRoot())
            let above = LensSimulator.sieDeflection(x: x, y: y, einsteinRadius: thetaE, axisRatio: (1 - 1.01e-8).squareRoot())
            #expect(abs(below.x - above.x) < 1e-7 && abs(below.y - above.y) < 1e-7)
        }
        let centre = LensSimulator.sieDeflection(x: 0, y: 0, einsteinRadius: thetaE, axisRatio: 0.6)
        #expect(centre.x == 0 && centre.y == 0)
    }

    @Test func sieDeflectionHasTwiceTheStatedConvergenceAsDivergenceAndNoCurl() {
        // ∇·α = 2κ with κ = θ_E √q / (2 √(q²x² + y²)), and ∂α_x/∂y = ∂α_y/∂x (α is a gradient).
        let thetaE = 11.0, h = 1e-5
        for q in [0.3, 0.6, 0.95] {
            for (x, y) in [(4.0, 3.0), (-2.0, 7.0), (9.0, -0.5), (-1.0, -1.0)] {
                func alpha(_ x: Double, _ y: Double) -> (x: Double, y: Double) {
                    LensSimulator.sieDeflection(x: x, y: y, einsteinRadius: thetaE, axisRatio: q)
                }
                let dxdx = (alpha(x + h, y).x - alpha(x - h, y).x) / (2 * h)
                let dydy = (alpha(x, y + h).y - alpha(x, y - h).y) / (2 * h)
                let dxdy = (alpha(x, y + h).x - alpha(x, y - h).x) / (2 * h)
                let dydx = (alpha(x + h, y).y - alpha(x - h, y).y) / (2 * h)
                let kappa = thetaE * q.squareRoot() / (2 * (q * q * x * x + y * y).squareRoot())
                #expect(abs(dxdx + dydy - 2 * kappa) < 1e-6 * max(1, 2 * kappa), "q \(q) at (\(x), \(y))")
                #expect(abs(dxdy - dydx) < 1e-6)
            }
        }
    }

    @Test func everyPixelIsFiniteWithTheLensCentreOnAPixel() {
        // Size 64: the image centre lies between pixels, so (0.5, 0.5) is pixel (32, 32)'s centre.
        for q in [1.0, 0.5] {
            let p = LensParameters(einsteinRadius: 9, lensX: 0.5, lensY: 0.5, lensAxisRatio: q, lensAngle: 1,
                                   shear1: 0.04, shear2: -0.03, sourceX: 0.5, sourceY: 0.5, lensLightPeak: 0.5, psfSigma: 1.2)
            let renderer = LensRenderer(size: 64)
            let image = renderer.intensity(of: p)
            #expect((0..<64 * 64).allSatisfy { image[$0].isFinite })
            // The lens light peaks at its centre pixel.
            let centre = image[32 * 64 + 32]
            #expect(centre > 0.1 && centre >= image[32 * 64 + 35] && centre >= image[29 * 64 + 32])
        }
    }

    @Test func sameSeedGivesTheSameImagesAndParametersAnotherSeedOthers() throws {
        let a = try LensSimulator.generate(count: 6, size: 32, seed: 5)
        let b = try LensSimulator.generate(count: 6, size: 32, seed: 5)
        let c = try LensSimulator.generate(count: 6, size: 32, seed: 6)
        #expect(a.shape == [6, 1, 32, 32])
        #expect(a.pixels == b.pixels && a.sampleTables == b.sampleTables)
        #expect(a.pixels != c.pixels && a.sampleTables["params"] != c.sampleTables["params"])
        // Each row is that image's draw; a prefix of a larger set is the smaller set.
        let params = try #require(a.sampleTables["params"])
        let columns = LensParameters.names.count
        #expect(params.count == 6 * columns)
        for i in 0..<6 {
            #expect(Array(params[i * columns..<(i + 1) * columns]) == LensParameters.draw(image: i, size: 32, seed: 5).row.map(Float.init))
        }
        // The thread count changes nothing.
        let threaded = try LensSimulator.generate(count: 6, size: 32, seed: 5, threads: 4)
        #expect(threaded.pixels == a.pixels && threaded.sampleTables == a.sampleTables)
        let longer = try LensSimulator.generate(count: 7, size: 32, seed: 5)
        guard case .uint8(let short) = a.pixels, case .uint8(let long) = longer.pixels else { Issue.record("not uint8"); return }
        #expect(Array(long.prefix(short.count)) == short)
    }

    @Test func drawnImagesAreVariedLensesWithinThePriors() throws {
        let data = try LensSimulator.generate(count: 64, size: 64, seed: 1)
        guard case .uint8(let pixels) = data.pixels else { Issue.record("not uint8"); return }
        let params = try #require(data.sampleTables["params"])
        let columns = LensParameters.names.count, plane = 64 * 64
        let thetaE = (0..<64).map { params[$0 * columns] }
        #expect(thetaE.allSatisfy { (8...16).contains($0) } && thetaE.max()! - thetaE.min()! > 4)
        for i in 0..<64 {
            let image = pixels[i * plane..<(i + 1) * plane]
            // Lit (lens and arcs well above the sky of ~13), never a flat or saturated frame.
            #expect(image.max()! > 40 && image.filter { $0 == 255 }.count < plane / 100)
            // The corners are sky with noise: dark.
            #expect(image[image.startIndex] < 40)
        }
    }

    @Test func writtenFileHoldsParamsSplitWithTheImages() throws {
        let dir = try PrepScratch()
        let out = dir.file("lenses.h5")
        let summary = try prepareDataset(.lenses(count: 10, size: 16, seed: 3), out: out,
                                         options: DatasetOptions(heldoutFraction: 0.3, seed: 3))
        #expect(summary.shape == [7, 1, 16, 16] && summary.dtype == "uint8" && !summary.hasLabels)
        let all = try LensSimulator.generate(count: 10, size: 16, seed: 3)
        guard case .uint8(let pixels) = all.pixels else { Issue.record("not uint8"); return }
        let params = try #require(all.sampleTables["params"])
        let columns = LensParameters.names.count, plane = 256
        let split = DatasetWriter.heldoutSplit(count: 10, fraction: 0.3, seed: 3)
        for (path, rows) in [(out, split.train), (DatasetWriter.defaultHeldoutPath(for: out), split.heldout)] {
            let file = try HDF5File.open(path)
            #expect(try file.shape(of: "params") == [rows.count, columns])
            #expect(try file.elementType(of: "params") == "float32")
            let names = try #require(file.attribute("param_names"))
            #expect(names.hasPrefix("[\"theta_e\", \"lens_x\"") && names.contains("\"noise_sigma\"]"))
            let written = try file.read("params", as: Float.self).values
            let images = try file.read("images", as: UInt8.self).values
            for (k, r) in rows.enumerated() {
                #expect(Array(written[k * columns..<(k + 1) * columns]) == Array(params[r * columns..<(r + 1) * columns]))
                #expect(Array(images[k * plane..<(k + 1) * plane]) == Array(pixels[r * plane..<(r + 1) * plane]))
            }
        }
    }

    @Test func impossibleCountOrSizeIsRefusedByName() {
        #expect { try LensSimulator.generate(count: 0, size: 64, seed: 0) } throws: { "\($0)".contains("image count") }
        #expect { try LensSimulator.generate(count: 4, size: 4, seed: 0) } throws: { "\($0)".contains("image size") }
    }
}
