import AttendLM
import AttendNN
import AttendTensor
import CAttendKernels
import XCTest

/// The fused tiled attention kernel against the plain composition (scores, causal mask, softmax, weighted values)
/// on odd lengths, a cache that already holds positions, grouped-query heads, head sizes on and off the SIMD
/// width, on the AVX2 path and the portable one. Tolerance 1e-5.
final class AttentionKernelTests: XCTestCase {
    func check(t: Int, start: Int, hq: Int, hkv: Int, hs: Int, seed: UInt64, precision: KVCache.Precision = .float32,
               file: StaticString = #filePath, line: UInt = #line) {
        let capacity = start + t + 3
        let cache = KVCache(layers: 1, kvHeads: hkv, headSize: hs, capacity: capacity, precision: precision)
        var keys = Tensor.randn([hkv, start + t, hs], seed: seed), values = Tensor.randn([hkv, start + t, hs], seed: seed + 1)
        cache.write(layer: 0, keys: keys.permute([1, 0, 2]), values: values.permute([1, 0, 2]))
        if precision == .float16 {  // what the cache holds: each value rounded to half precision
            keys = Tensor(keys.toArray().map { Float(Float16($0)) }, shape: keys.shape)
            values = Tensor(values.toArray().map { Float(Float16($0)) }, shape: values.shape)
            let (k, v) = cache.keysAndValues(layer: 0, length: start + t)
            XCTAssertEqual(k.toArray(), keys.toArray(), "f16 keys read back", file: file, line: line)
            XCTAssertEqual(v.toArray(), values.toArray(), "f16 values read back", file: file, line: line)
        }
        if start > 0 {  // positions already in the cache before these queries
            cache.advance(start)
        }
        let q = Tensor.randn([t, hq, hs], seed: seed + 2) * 2
        let fused = cache.causalAttention(queries: q, layer: 0, kvHeads: hkv).toArray()
        if t == 1 {  // the decoding kernel (key ranges split over threads, parts merged) gives the same row
            let decoded = cache.decodeAttention(query: q, layer: 0, kvHeads: hkv).toArray()
            XCTAssertEqual(decoded.count, fused.count, "decode, start \(start)", file: file, line: line)
            XCTAssertLessThanOrEqual(zip(decoded, fused).map { abs($0 - $1) }.max()!, 1e-5, "decode, start \(start)", file: file, line: line)
        }
        // The composition: each query head against its KV head's rows, causal with the queries at the end.
        let group = hq / hkv
        let queries = q.permute([1, 0, 2]).contiguous().reshape([hkv, group, t, hs])
        let (y, _) = withNoGrad { Attention.scaledDotProduct(query: queries, key: keys.reshape([hkv, 1, start + t, hs]),
                                                              value: values.reshape([hkv, 1, start + t, hs]), causal: true) }
        let expected = y.reshape([hq, t, hs]).permute([1, 0, 2]).contiguous().toArray()
        XCTAssertEqual(fused.count, expected.count, "t \(t), start \(start), heads \(hq)/\(hkv), head size \(hs)", file: file, line: line)
        let worst = zip(fused, expected).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, 1e-5, "t \(t), start \(start), heads \(hq)/\(hkv), head size \(hs)", file: file, line: line)
    }

    func testFusedAttentionEqualsTheComposition() {
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            check(t: 1, start: 0, hq: 2, hkv: 1, hs: 8, seed: 1)
            check(t: 37, start: 0, hq: 6, hkv: 2, hs: 64, seed: 2)     // GQA, rows not a multiple of the 16-row block
            check(t: 70, start: 23, hq: 3, hkv: 3, hs: 16, seed: 3)    // a cache that already holds 23 positions
            check(t: 5, start: 130, hq: 4, hkv: 1, hs: 24, seed: 4)    // key blocks of 64 past the first, partly masked
            check(t: 200, start: 0, hq: 9, hkv: 3, hs: 64, seed: 5)    // SmolLM2's heads, threaded
            check(t: 17, start: 3, hq: 2, hkv: 2, hs: 20, seed: 6)     // head size off the 8-lane width (portable path)
            check(t: 1, start: 1500, hq: 9, hkv: 3, hs: 64, seed: 7)   // one decoding step over a long cache (split in parts)
            check(t: 1, start: 40, hq: 4, hkv: 2, hs: 24, seed: 8)
            // A half-precision cache (llama.cpp's): the same kernels over f16 keys and values, against the composition
            // on the rounded values; decoding steps short and long, on and off the SIMD width, and a prompt.
            for (t, start, hq, hkv, hs, seed) in [(1, 0, 2, 1, 8, 11), (1, 1500, 9, 3, 64, 12), (1, 40, 4, 2, 24, 13), (37, 5, 6, 2, 64, 14),
                                                  (17, 3, 2, 2, 20, 15)] {
                check(t: t, start: start, hq: hq, hkv: hkv, hs: hs, seed: UInt64(seed), precision: .float16)
            }
        } }
    }

    /// Copies keep every position of a half-precision cache; a prefix copy keeps the first n.
    func testHalfPrecisionCacheCopies() {
        let cache = KVCache(layers: 2, kvHeads: 2, headSize: 8, capacity: 10, precision: .float16)
        let k = Tensor.randn([6, 2, 8], seed: 1), v = Tensor.randn([6, 2, 8], seed: 2)
        for l in 0..<2 { cache.write(layer: l, keys: k * Float(l + 1), values: v) }
        cache.advance(6)
        let copy = cache.copy(), prefix = KVCache(layers: 2, kvHeads: 2, headSize: 8, capacity: 4, precision: .float16)
        cache.copyPrefix(4, into: prefix)
        XCTAssertEqual(copy.count, 6)
        XCTAssertEqual(prefix.count, 4)
        for l in 0..<2 {
            XCTAssertEqual(copy.keysAndValues(layer: l, length: 6).keys.toArray(), cache.keysAndValues(layer: l, length: 6).keys.toArray())
            XCTAssertEqual(copy.keysAndValues(layer: l, length: 6).values.toArray(), cache.keysAndValues(layer: l, length: 6).values.toArray())
            XCTAssertEqual(prefix.keysAndValues(layer: l, length: 4).keys.toArray(), cache.keysAndValues(layer: l, length: 4).keys.toArray())
        }
        let expected = (k * 2).permute([1, 0, 2]).contiguous().toArray().map { Float(Float16($0)) }
        XCTAssertEqual(cache.keysAndValues(layer: 1, length: 6).keys.toArray(), expected)
    }

    /// Multi-head self-attention without gradients takes the fused kernel (padding by key lengths, or causal);
    /// with gradients it takes the composition. Both must give the same output.
    func testMultiHeadAttentionFusedPathEqualsComposition() {
        for level in SIMDLevel.available { SIMDLevel.withLimit(level) {
            // Head sizes 8, 64, 8, and 20 and 24 (off the 8- and 16-lane widths).
            for (width, heads, t, lengths) in [(16, 2, 37, [37, 20, 1]), (384, 6, 70, [70, 65]), (24, 3, 5, [2]), (40, 2, 23, [23, 9]),
                                               (72, 3, 11, [11, 4, 1])] {
                var g = RandomGenerator(seed: UInt64(width))
                let mha = MultiHeadAttention(dimension: width, headCount: heads, generator: &g)
                let x = Tensor.randn([lengths.count, t, width], seed: 9)
                let mask = Attention.paddingMask(lengths: lengths, maxLength: t)
                let reference = mha(x, mask: mask).toArray()  // gradient mode on: the composition
                let fused = withNoGrad { mha(x, mask: mask, keyLengths: lengths) }.toArray()
                XCTAssertEqual(reference.count, fused.count, "padding, width \(width), \(level.name)")
                XCTAssertLessThanOrEqual(zip(reference, fused).map { abs($0 - $1) }.max()!, 1e-5, "padding, width \(width), \(level.name)")
                let causalReference = mha(x, causal: true).toArray()
                let causalFused = withNoGrad { mha(x, causal: true) }.toArray()
                XCTAssertEqual(causalReference.count, causalFused.count, "causal, width \(width), \(level.name)")
                XCTAssertLessThanOrEqual(zip(causalReference, causalFused).map { abs($0 - $1) }.max()!, 1e-5, "causal, width \(width), \(level.name)")
            }
        } }
    }

    /// `MultiHeadAttention`'s training path, one product over the joined query, key and value weights, equals the
    /// three products it replaces, output and the gradients of the input and of every weight and bias, to 1e-5.
    func testMultiHeadAttentionJoinedProjectionEqualsThreeProducts() {
        for bias in [true, false] {
            var generator = RandomGenerator(seed: 14)
            let attention = MultiHeadAttention(dimension: 12, headCount: 3, bias: bias, generator: &generator)
            let x = Tensor.randn([2, 6, 12], seed: 15, requiresGrad: true)
            let weights = Tensor.uniform([2, 6, 12], low: -1, high: 1, seed: 16)
            var results: [[[Float]]] = []
            for joined in [true, false] {
                for p in attention.parameters() + [x] { p.zeroGrad() }
                let y: Tensor
                if joined {
                    y = attention(x, causal: true, keyLengths: [6, 4])
                } else {
                    let heads = [attention.query(x), attention.key(x), attention.value(x)].map { $0.reshape([2, 6, 3, 4]) }
                    y = attention.output(Tensor.selfAttention(query: heads[0], key: heads[1], value: heads[2], causal: true,
                                                              keyLengths: [6, 4]))
                }
                (y * weights).sum().backward()
                results.append([y.toArray(), x.grad!.toArray()] + attention.parameters().map { $0.grad!.toArray() })
            }
            XCTAssertEqual(results[0].count, bias ? 10 : 6)
            for (i, (a, b)) in zip(results[0], results[1]).enumerated() {
                XCTAssertLessThan(zip(a, b).map { Swift.abs($0 - $1) }.max()!, 1e-5, "bias \(bias), output / x / parameter \(i)")
            }
        }
    }
}
