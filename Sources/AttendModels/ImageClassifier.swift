// Small image classifiers (an MLP and a LeNet-style CNN) and their training loop: the end-to-end job
// that shows the core works (Fashion-MNIST, Xiao et al. 2017).

import AttendNN
import AttendTensor
import Foundation

/// A multi-layer perceptron over flattened images.
public final class MLPClassifier: Module, UnaryLayer {
    public let layers: Sequential

    public init(inputSize: Int, hiddenSizes: [Int] = [256, 128], classCount: Int, generator: inout RandomGenerator) {
        var stack: [UnaryLayer] = [Flatten()]
        var width = inputSize
        for h in hiddenSizes {
            stack.append(Linear(width, h, generator: &generator))
            stack.append(Activation(.relu))
            width = h
        }
        stack.append(Linear(width, classCount, generator: &generator))
        layers = Sequential(stack)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers(x) }
}

/// Two conv-ReLU-maxpool stages then two linear layers: [N, C, H, W] -> [N, classes].
///
/// Each stage runs the pooling before the ReLU: ReLU is monotone, so max(relu(a), relu(b)) = relu(max(a, b)) bit for
/// bit, and the gradients agree too (the first of equal maxima gets it; a non-positive maximum passes none either
/// way), while the ReLU and its gradient touch a quarter of the values.
public final class CNNClassifier: Module, UnaryLayer {
    public let features: Sequential
    public let classifier: Sequential

    public init(channels: Int = 1, height: Int = 28, width: Int = 28, classCount: Int,
                widths: (Int, Int) = (32, 64), hidden: Int = 128, generator: inout RandomGenerator) {
        features = Sequential([
            Conv2d(channels, widths.0, kernelSize: 3, padding: 1, generator: &generator), MaxPool2d(2), Activation(.relu),
            Conv2d(widths.0, widths.1, kernelSize: 3, padding: 1, generator: &generator), MaxPool2d(2), Activation(.relu),
        ])
        classifier = Sequential([
            Flatten(),
            Linear(widths.1 * (height / 4) * (width / 4), hidden, generator: &generator), Activation(.relu),
            Linear(hidden, classCount, generator: &generator),
        ])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { classifier(features(x)) }
}
