// The lectures' plain autoencoder: a convolutional encoder squeezes a 28 x 28 image into a short code, a decoder
// rebuilds the image from the code alone, and training lowers the pixels' squared error. What the code keeps is
// what the network found worth keeping: the "encoder turns anything into a hidden state" idea in its barest form.

import AttendDatasets
import AttendNN
import AttendTensor
import Foundation

/// 28 x 28 grey images -> a `codeSize` vector -> 28 x 28 images.
///
/// ```swift
/// var g = RandomGenerator(seed: 0)
/// let ae = ImageAutoencoder(codeSize: 32, generator: &g)
/// let code = ae.encode(images)          // [N, 32]
/// let rebuilt = ae.decode(code)         // [N, 1, 28, 28] in (0, 1)
/// ```
public final class ImageAutoencoder: Module, UnaryLayer {
    public let encoderConvolutions: [Conv2d]
    public let toCode: Linear
    public let fromCode: Linear
    public let decoderConvolutions: [Conv2d]

    public init(codeSize: Int, generator g: inout RandomGenerator) {
        encoderConvolutions = [Conv2d(1, 32, kernelSize: 3, stride: 2, padding: 1, generator: &g),   // 14 x 14
                               Conv2d(32, 64, kernelSize: 3, stride: 2, padding: 1, generator: &g)]  // 7 x 7
        toCode = Linear(64 * 7 * 7, codeSize, generator: &g)
        fromCode = Linear(codeSize, 64 * 7 * 7, generator: &g)
        decoderConvolutions = [Conv2d(64, 32 * 4, kernelSize: 3, padding: 1, generator: &g),   // -> 14 x 14 by pixel shuffle
                               Conv2d(32, 1 * 4, kernelSize: 3, padding: 1, generator: &g)]    // -> 28 x 28
    }

    public func encode(_ x: Tensor) -> Tensor {
        let h = encoderConvolutions.reduce(x) { $1($0).relu() }
        return toCode(h.flatten(from: 1))
    }

    public func decode(_ code: Tensor) -> Tensor {
        let h = fromCode(code).relu().reshape([code.shape[0], 64, 7, 7])
        let up = pixelShuffle(decoderConvolutions[0](h), 2).relu()
        return pixelShuffle(decoderConvolutions[1](up), 2).sigmoid()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { decode(encode(x)) }

    /// Trains on `train` by mean squared error with Adam; returns the test set's MSE after each epoch.
    public func fit(train: ImageDataset, test: ImageDataset, epochs: Int, batchSize: Int, learningRate: Float, seed: UInt64,
                    progress: ProgressBar? = nil) -> [Float] {
        let optimizer = Adam(parameters: namedParameters(), learningRate: learningRate)
        var testErrors: [Float] = []
        for epoch in 0..<epochs {
            self.train()
            for batch in ShuffledBatches(count: train.count, batchSize: batchSize, seed: seed, epoch: epoch) {
                let x = train.images.indexSelect(IntTensor(batch, shape: [batch.count]))
                let loss = (self(x) - x).pow(2).mean()
                zeroGrad()
                loss.backward()
                optimizer.update()
                progress?.advance(status: String(format: "mse %.4f", loss.item))
            }
            self.eval()
            testErrors.append(meanSquaredError(test))
        }
        return testErrors
    }

    public func meanSquaredError(_ data: ImageDataset) -> Float {
        var total: Float = 0
        for batch in sequentialBatches(count: data.count, batchSize: 500) {
            let x = data.images.indexSelect(IntTensor(batch, shape: [batch.count]))
            total += withNoGrad { (self(x) - x).pow(2).mean().item } * Float(batch.count)
        }
        return total / Float(data.count)
    }
}
