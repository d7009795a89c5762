// CLIP's symmetric contrastive loss against open_clip's ClipLoss (scripts/reference/make_clip_loss_fixtures.py):
// the loss and its gradients with respect to the image features, the text features and the logit scale, on a
// small batch, at the paper's initial scale, at the clamp (100) and with a caption shared by two pictures.
// Tolerance 1e-5 relative to max(1, |value|); then central differences through the learned log scale.

import AttendNN
import AttendTensor
import Foundation
import XCTest

final class CLIPLossTests: XCTestCase {
    func assertRelativelyClose(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, "\(what): shapes", file: file, line: line)
        let x = a.toArray(), y = b.toArray()
        for i in 0..<min(x.count, y.count) where abs(x[i] - y[i]) > 1e-5 * max(1, abs(y[i])) {
            XCTFail("\(what)[\(i)]: \(x[i]) vs open_clip \(y[i])", file: file, line: line)
            return
        }
    }

    func testLossAndGradientsMatchOpenCLIP() throws {
        let f = try fixture("clip_loss")
        for name in ["small", "paper_init", "clamped", "duplicates"] {
            let image = f.tensors["\(name).image"]!.copy(), text = f.tensors["\(name).text"]!.copy(), scale = f.tensors["\(name).scale"]!.copy()
            for t in [image, text, scale] { t.requiresGrad = true }
            let loss = Loss.clip(imageEmbeddings: image, textEmbeddings: text, logitScale: scale)
            assertRelativelyClose(loss.reshape([1]), f.tensors["\(name).loss"]!, "\(name) loss")
            loss.backward()
            assertRelativelyClose(image.grad!, f.tensors["\(name).grad_image"]!, "\(name) image gradient")
            assertRelativelyClose(text.grad!, f.tensors["\(name).grad_text"]!, "\(name) text gradient")
            assertRelativelyClose(scale.grad!, f.tensors["\(name).grad_scale"]!, "\(name) scale gradient")
        }
    }

    /// Data-parallel CLIP (CLIP.train with a DataParallelShare): each of 3 processes gathers the others' rows as
    /// constants and takes the whole batch's loss. Its gradient on its own rows must be the single process's for those
    /// rows (so the towers' gradients add up over processes), and its temperature gradient the whole loss's on every
    /// process (so one copy counts). The processes are played in turn here, with the gather answered from the batch.
    func testGatheredContrastiveLossGivesEachProcessItsRowsGradient() throws {
        let n = 7, d = 5
        let image = Loss.normalize(Tensor.randn([n, d], seed: 11)), text = Loss.normalize(Tensor.randn([n, d], seed: 12))
        let (fullImage, fullText, fullScale) = (image.copy(), text.copy(), Tensor([14.3], shape: [1]))
        for t in [fullImage, fullText, fullScale] { t.requiresGrad = true }
        Loss.clip(imageEmbeddings: fullImage, textEmbeddings: fullText, logitScale: fullScale).backward()
        for index in 0..<3 {
            var answering: Tensor?
            let share = DataParallelShare(index: index, count: 3, averageGradients: nil, sumGradients: nil, averageLoss: nil,
                                          allGather: { local, counts in
                                              XCTAssertEqual(counts, [2, 2, 3])
                                              XCTAssertFalse(GradMode.isEnabled, "the gather must not record")
                                              return answering!.copy()
                                          })
            let rows = share.rows(of: n)
            let localImage = image.slice(axis: 0, start: rows.lowerBound, length: rows.count).contiguous()
            let localText = text.slice(axis: 0, start: rows.lowerBound, length: rows.count).contiguous()
            let scale = Tensor([14.3], shape: [1])
            for t in [localImage, localText, scale] { t.requiresGrad = true }
            answering = image
            let gatheredImage = try share.gather(localImage, batch: n)
            answering = text
            let gatheredText = try share.gather(localText, batch: n)
            Loss.clip(imageEmbeddings: gatheredImage, textEmbeddings: gatheredText, logitScale: scale).backward()
            assertRelativelyClose(localImage.grad!, fullImage.grad!.slice(axis: 0, start: rows.lowerBound, length: rows.count).contiguous(),
                                  "process \(index)'s image rows")
            assertRelativelyClose(localText.grad!, fullText.grad!.slice(axis: 0, start: rows.lowerBound, length: rows.count).contiguous(),
                                  "process \(index)'s text rows")
            assertRelativelyClose(scale.grad!, fullScale.grad!, "process \(index)'s temperature")
        }
    }

    /// The loss falls when pairs line up and rises when they are shuffled, at any scale.
    func testMatchedPairsScoreBelowShuffledOnes() {
        let a = Loss.normalize(Tensor.randn([6, 4], seed: 3))
        let shuffled = a.indexSelect(IntTensor([1, 2, 3, 4, 5, 0], shape: [6]))
        for s: Float in [1, 14.3, 100] {
            XCTAssertLessThan(Loss.clip(imageEmbeddings: a, textEmbeddings: a, logitScale: Tensor(s)).item,
                              Loss.clip(imageEmbeddings: a, textEmbeddings: shuffled, logitScale: Tensor(s)).item)
        }
    }

    /// Central differences on unnormalized features and the log scale, through normalization and exp().
    func testGradientsThroughNormalizationAndLogScaleMatchFiniteDifferences() {
        let image = Tensor.randn([5, 3], seed: 11, requiresGrad: true), text = Tensor.randn([5, 3], seed: 12, requiresGrad: true)
        let logScale = Tensor([1.3], shape: [1], requiresGrad: true)
        let f = { Loss.clip(imageEmbeddings: Loss.normalize(image), textEmbeddings: Loss.normalize(text), logitScale: logScale.exp()) }
        f().backward()
        let h: Float = 1e-3
        for (k, x) in [image, text, logScale].enumerated() {
            let g = x.grad!.toArray()
            for i in 0..<x.count {
                let saved = x.pointer[i]
                x.pointer[i] = saved + h
                let up = withNoGrad { f().item }
                x.pointer[i] = saved - h
                let down = withNoGrad { f().item }
                x.pointer[i] = saved
                let numeric = (up - down) / (2 * h)
                XCTAssertEqual(g[i], numeric, accuracy: 2e-3 + 1e-2 * abs(numeric), "input \(k) element \(i)")
            }
        }
    }
}
