// Transformer encoder and decoder blocks (Vaswani et al., 2017), pre-norm (GPT-2) or post-norm
// (the original paper, BERT), with residual connections and a position-wise feed-forward network.

import AttendTensor

/// Linear -> activation -> dropout -> Linear.
public final class FeedForward: Module, UnaryLayer {
    public let up: Linear
    public let down: Linear
    public let activation: Activation.Kind
    public let dropout: Dropout

    public init(dimension: Int, hiddenDimension: Int, activation: Activation.Kind = .gelu, dropout: Float = 0,
                generator: inout RandomGenerator) {
        up = Linear(dimension, hiddenDimension, generator: &generator)
        down = Linear(hiddenDimension, dimension, generator: &generator)
        self.activation = activation
        self.dropout = Dropout(dropout, branchingFrom: generator)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        down(dropout(Activation.apply(activation, up(x))))
    }
}

/// Settings shared by encoder and decoder blocks.
public struct TransformerBlockConfig: Codable, Equatable {
    public var dimension: Int
    public var headCount: Int
    public var hiddenDimension: Int
    public var dropout: Float = 0
    public var activation: Activation.Kind = .gelu
    /// Pre-norm normalizes before each sub-layer (stable for deep stacks); post-norm after the residual add.
    public var preNorm: Bool = true
    public var layerNormEps: Float = 1e-5

    public init(dimension: Int, headCount: Int, hiddenDimension: Int? = nil, dropout: Float = 0,
                activation: Activation.Kind = .gelu, preNorm: Bool = true, layerNormEps: Float = 1e-5) {
        self.dimension = dimension
        self.headCount = headCount
        self.hiddenDimension = hiddenDimension ?? 4 * dimension
        self.dropout = dropout
        self.activation = activation
        self.preNorm = preNorm
        self.layerNormEps = layerNormEps
    }
}

/// Self-attention + feed-forward, each wrapped in a residual connection and layer norm.
public final class TransformerEncoderBlock: Module {
    public let attention: MultiHeadAttention
    public let attentionNorm: LayerNorm
    public let feedForward: FeedForward
    public let feedForwardNorm: LayerNorm
    public let dropout: Dropout
    public let preNorm: Bool

    public init(_ config: TransformerBlockConfig, generator: inout RandomGenerator) {
        attention = MultiHeadAttention(dimension: config.dimension, headCount: config.headCount, generator: &generator)
        attentionNorm = LayerNorm(config.dimension, eps: config.layerNormEps)
        feedForward = FeedForward(dimension: config.dimension, hiddenDimension: config.hiddenDimension,
                                  activation: config.activation, dropout: config.dropout, generator: &generator)
        feedForwardNorm = LayerNorm(config.dimension, eps: config.layerNormEps)
        dropout = Dropout(config.dropout, branchingFrom: generator, salt: 1)   // built at the feed-forward's state
        preNorm = config.preNorm
    }

    /// x: [B, T, C]; mask: 1 = blocked, broadcastable to [B, H, T, T]; causal for decoder-only (GPT) use.
    /// `keyLengths` (real tokens per row, the same as a padding `mask`) lets inference use the fused attention kernel.
    public func callAsFunction(_ x: Tensor, mask: Tensor? = nil, causal: Bool = false, keyLengths: [Int]? = nil) -> Tensor {
        if preNorm {
            let h = x + dropout(attention(attentionNorm(x), mask: mask, causal: causal, keyLengths: keyLengths))
            return h + dropout(feedForward(feedForwardNorm(h)))
        }
        let h = attentionNorm(x + dropout(attention(x, mask: mask, causal: causal, keyLengths: keyLengths)))
        return feedForwardNorm(h + dropout(feedForward(h)))
    }

    /// The block's output at the first `count` positions only [B, count, C]: what `callAsFunction(x)` gives there,
    /// with keys and values from every position but the queries, the attention output and the feed-forward network
    /// computed for those positions alone. A model read at its class token needs nothing else from its last layer,
    /// and skips most of that layer's work (a ViT of 17 positions: 2 of its 12 C^2 products per position).
    ///
    /// ```swift
    /// let cls = vit.layers.last!.firstPositions(1, of: h)   // [B, 1, C], equal to vit.layers.last!(h)[:, :1]
    /// ```
    ///
    /// - Parameter mask: a key padding mask (1 = padded), broadcastable to [B, H, count, T].
    public func firstPositions(_ count: Int, of x: Tensor, mask: Tensor? = nil) -> Tensor {
        precondition(x.shape.count == 3 && count >= 1 && count <= x.shape[1],
                     "firstPositions: \(count) positions of an input shaped \(x.shape); expected 1...T of [B, T, C]")
        let first = x.slice(axis: 1, start: 0, length: count)
        if preNorm {
            let normalized = attentionNorm(x)
            let queries = normalized.slice(axis: 1, start: 0, length: count)
            let h = first + dropout(attention(queries, context: normalized, mask: mask))
            return h + dropout(feedForward(feedForwardNorm(h)))
        }
        let h = attentionNorm(first + dropout(attention(first, context: x, mask: mask)))
        return feedForwardNorm(h + dropout(feedForward(h)))
    }
}

/// Causal self-attention, cross-attention to the encoder output, then feed-forward.
public final class TransformerDecoderBlock: Module {
    public let selfAttention: MultiHeadAttention
    public let selfAttentionNorm: LayerNorm
    public let crossAttention: MultiHeadAttention
    public let crossAttentionNorm: LayerNorm
    public let feedForward: FeedForward
    public let feedForwardNorm: LayerNorm
    public let dropout: Dropout
    public let preNorm: Bool

    public init(_ config: TransformerBlockConfig, encoderDimension: Int? = nil, generator: inout RandomGenerator) {
        selfAttention = MultiHeadAttention(dimension: config.dimension, headCount: config.headCount, generator: &generator)
        selfAttentionNorm = LayerNorm(config.dimension, eps: config.layerNormEps)
        crossAttention = MultiHeadAttention(dimension: config.dimension, headCount: config.headCount,
                                            keyValueDimension: encoderDimension, generator: &generator)
        crossAttentionNorm = LayerNorm(config.dimension, eps: config.layerNormEps)
        feedForward = FeedForward(dimension: config.dimension, hiddenDimension: config.hiddenDimension,
                                  activation: config.activation, dropout: config.dropout, generator: &generator)
        feedForwardNorm = LayerNorm(config.dimension, eps: config.layerNormEps)
        dropout = Dropout(config.dropout, branchingFrom: generator, salt: 1)   // built at the feed-forward's state
        preNorm = config.preNorm
    }

    /// x: [B, Tq, C] decoder states; memory: [B, Tk, Cenc] encoder output; memoryMask: 1 = padded key.
    public func callAsFunction(_ x: Tensor, memory: Tensor, selfMask: Tensor? = nil, memoryMask: Tensor? = nil) -> Tensor {
        if preNorm {
            var h = x + dropout(selfAttention(selfAttentionNorm(x), mask: selfMask, causal: true))
            h = h + dropout(crossAttention(crossAttentionNorm(h), context: memory, mask: memoryMask))
            return h + dropout(feedForward(feedForwardNorm(h)))
        }
        var h = selfAttentionNorm(x + dropout(selfAttention(x, mask: selfMask, causal: true)))
        h = crossAttentionNorm(h + dropout(crossAttention(h, context: memory, mask: memoryMask)))
        return feedForwardNorm(h + dropout(feedForward(h)))
    }
}
