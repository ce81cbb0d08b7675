import ArgumentParser
import Models

/// `train --recipe NAME`: a seed's training recipe as one option. A recipe sets the settings of its table
/// below; every option given explicitly beside it overrides the recipe's value (options not in the table
/// keep their defaults). On --resume the checkpoint's settings apply, as always.
enum TrainingRecipe: String, CaseIterable, ExpressibleByArgument {
    /// Seed 001, the keras.io DDIM (ZOO.md §5, "Recipe"), as the DeepLense proposal uses it.
    case ddimKeras = "ddim-keras"

    /// The recipe's global batch (images per optimizer step over all ranks), split over the ranks.
    var globalBatch: Int {
        switch self {
        case .ddimKeras: return 64
        }
    }

    /// The recipe's settings, over `base` (the defaults).
    func apply(to base: TrainingConfiguration) -> TrainingConfiguration {
        var c = base
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
        }
        return c
    }

    /// For `train --help`: each recipe's table.
    static var help: String {
        "ddim-keras (seed 001, keras.io DDIM, ZOO §5): --schedule continuous-cosine --loss mae --optimizer adamw --lr 1e-3 --lr-schedule constant --weight-decay 1e-4 --adam-epsilon 1e-7 (β 0.9/0.999) --ema-rate 0.999 --ema-buffers --normalize-data, a global batch of 64 split over the ranks, --sampler ddim (η 0)."
    }
}
