import ArgumentParser
import Models

/// `train --recipe NAME`: a seed's training recipe as one option. A recipe sets the settings of its table
/// below; every option given explicitly beside it overrides the recipe's value (options not in the table
/// keep their defaults). On --resume the checkpoint's settings apply, as always.
///
/// The recipes of seeds 002–004 belong to a model: they choose it when --model is not given, and their
/// model-only settings (the needle seed's small instance, the course's label dropout) apply only to it,
/// so that the rest of a recipe (schedule, optimizer, batch, length, sampler) composes with any model.
enum TrainingRecipe: String, CaseIterable, ExpressibleByArgument {
    /// Seed 001, the keras.io DDIM (ZOO.md §5, "Recipe"), as the DeepLense proposal uses it.
    case ddimKeras = "ddim-keras"
    /// Seed 002, DeepLearning.AI's diffusion course with its ContextUnet (ZOO.md §2).
    case course
    /// Seed 003, the needle UNet of the dlsys course project (ZOO.md §3), at its repository's size.
    case needle
    /// Seed 004, the DDPM model card with MyUNet (ZOO.md §4).
    case ddpmCard = "ddpm-card"

    /// The recipe's global batch (images per optimizer step over all ranks), split over the ranks.
    var globalBatch: Int {
        switch self {
        case .ddimKeras: return 64
        case .course: return 100
        case .needle: return 12
        case .ddpmCard: return 128
        }
    }

    /// The recipe's length in epochs when neither --steps nor --epochs is given (nil: the default, 1).
    var epochs: Int? {
        switch self {
        case .ddimKeras: return nil   // keras.io trains as long as one lets it; no length of its own
        case .course: return 32
        case .needle: return 2
        case .ddpmCard: return 50
        }
    }

    /// The model the recipe was written for (nil: any model that takes a continuous conditioning value).
    var model: ModelArchitecture? {
        switch self {
        case .ddimKeras: return nil
        case .course: return .contextUnet
        case .needle: return .needleUNet
        case .ddpmCard: return .myUNet
        }
    }

    /// The recipe's settings over `base` (the defaults), for a run of `model`.
    func apply(to base: TrainingConfiguration, model chosen: ModelArchitecture?) -> TrainingConfiguration {
        var c = base
        if let model = self.model { c.model = model }
        let ownModel = (chosen ?? c.model) == c.model
        switch self {
        case .ddimKeras:
            c.schedule = .continuousCosine     // t ~ U(0, 1), signal cos / noise sin between rates 0.95 and 0.02
            c.loss = .mae                      // mean|ε̂ − ε|
            c.optimizer = .adamw               // decoupled weight decay on all weights
            c.weightDecay = 1e-4
            c.adamEpsilon = 1e-7               // Keras' ε (β 0.9/0.999 are the defaults)
            c.learningRate = 1e-3
            c.learningRateSchedule = .constant // Keras' AdamW at a fixed learning rate
            c.emaRate = 0.999                  // EMA of the weights and of the BatchNorm moving statistics
            c.emaBuffers = true
            c.normalizeData = true             // per channel (x/255 − μ_c)/σ_c of the training set
            // The sampler is the default one, --sampler ddim with η 0: on this schedule the continuous DDIM.
        case .course:
            c.schedule = .course               // T + 1 betas, ᾱ_0 = 1, t in 1…T
            c.timesteps = 500
            c.learningRate = 1e-3
            c.learningRateSchedule = .linear   // the course's lr·(1 − epoch/32), per step (README)
            c.sampler = .ddpm                  // σ_t² = β_t
            c.ddpmVariance = .beta
            if ownModel { c.labelDropout = 0.1 }  // the course's context mask
        case .needle:
            c.schedule = .needleLinear         // linspace(1e-4, 0.02) rescaled by 1000/T
            c.timesteps = 300
            c.learningRate = 1e-3
            c.learningRateSchedule = .constant
            c.sampler = .ddpm
            c.ddpmVariance = .posterior        // β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t)
            if ownModel { c.modelOptions = ModelOptions(channels: [32, 64, 128], timeDimension: 16) }  // needle_unet_small
        case .ddpmCard:
            // SPEC §2's schedule and loss are the defaults (T 1000, β linear 1e-4 … 0.02, MSE).
            c.learningRate = 1e-3
            c.learningRateSchedule = .constant // the card has no schedule
            c.sampler = .ddpm
            c.ddpmVariance = .beta             // σ_t = √β_t
        }
        return c
    }

    /// For `train --help`: each recipe's table.
    static var help: String {
        """
        ddim-keras (seed 001, keras.io DDIM, ZOO §5): --schedule continuous-cosine --loss mae --optimizer adamw --lr 1e-3 \
        --lr-schedule constant --weight-decay 1e-4 --adam-epsilon 1e-7 (β 0.9/0.999) --ema-rate 0.999 --ema-buffers \
        --normalize-data, a global batch of 64 split over the ranks, --sampler ddim (η 0). \
        course (seed 002, ZOO §2): --model context-unet --schedule course --timesteps 500 --lr 1e-3 --lr-schedule linear, \
        a global batch of 100, 32 epochs, --label-dropout 0.1 (ContextUnet only), --sampler ddpm --ddpm-variance beta. \
        needle (seed 003, ZOO §3): --model needle-unet --channels 32,64,128 --time-dim 16 (needle-unet only, when no size \
        is given) --schedule needle-linear --timesteps 300 --lr 1e-3 --lr-schedule constant, a global batch of 12, \
        2 epochs, --sampler ddpm --ddpm-variance posterior. \
        ddpm-card (seed 004, ZOO §4): --model my-unet, the linear schedule (T 1000), --lr 1e-3 --lr-schedule constant, \
        a global batch of 128, 50 epochs, --sampler ddpm --ddpm-variance beta.
        """
    }
}
