// Training and evaluating CLIP: a locked image tower's features computed once (and cached), or for a trained tower
// (the from-scratch ViT, the unlocked CNN) the pictures kept as it takes them and run through it each step; each step
// a batch of pictures paired with one of their captions drawn at random, the shared Trainer running the symmetric
// contrastive loss; evaluation by zero-shot accuracy per class and recall@K both ways.

import AttendNN
import AttendTensor
import AttendVision
import Foundation

/// How a CLIP model is trained.
public struct CLIPTrainingConfig: Codable, Equatable {
    public var steps = 1000
    public var batchSize = 256
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0.1
    public var warmupSteps = 50
    public var seed: UInt64 = 1

    public init() {}

    public func validate() throws {
        guard (1...10_000_000).contains(steps) else { throw AttendError("steps must be 1...10000000, got \(steps)") }
        guard (2...65_536).contains(batchSize) else { throw AttendError("batch size must be 2...65536, got \(batchSize)") }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 1 else { throw AttendError("learning rate must be in (0, 1], got \(learningRate)") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw AttendError("weight decay must be finite and >= 0, got \(weightDecay)") }
        guard warmupSteps >= 0 else { throw AttendError("warmup steps must be >= 0, got \(warmupSteps)") }
    }
}

/// Zero-shot accuracy and retrieval recall of a CLIP model on captioned pictures.
public struct CLIPEvaluation: Codable {
    /// Per class: (name, pictures, share classified right).
    public var classes: [ClassScore]
    public var accuracy: Double
    /// Recall@1, @5, @10, image -> text and text -> image, over `pairs` pairs.
    public var imageToText: [Double]
    public var textToImage: [Double]
    public var pairs: Int

    public struct ClassScore: Codable {
        public var name: String
        public var count: Int
        public var accuracy: Double
    }

    /// Accuracy over the pictures of the classes named in `names` only (the held-out classes), still choosing among
    /// all classes.
    public func accuracy(over names: Set<String>) -> Double {
        let picked = classes.filter { names.contains($0.name) }
        let n = picked.reduce(0) { $0 + $1.count }
        return n == 0 ? .nan : picked.reduce(0) { $0 + $1.accuracy * Double($1.count) } / Double(n)
    }
}

extension CLIP {
    /// Width of a row of `imageFeatures(of:)`: the locked tower's feature width, or a flattened picture's size.
    public var imageRowDimension: Int { config.trainsImageTower ? 3 * config.imageSize * config.imageSize : config.imageFeatureDimension }

    /// Unit-length image embeddings [N, D] of rows from `imageFeatures(of:)` (a from-scratch tower runs on them
    /// first, `batchSize` pictures at a time), without gradient.
    public func embedImageRows(_ rows: Tensor, batchSize: Int = 256) -> Tensor {
        withNoGrad {
            guard config.trainsImageTower else { return projectImageFeatures(rows) }
            let n = rows.shape[0], s = config.imageSize
            var parts: [Tensor] = []
            for start in stride(from: 0, to: n, by: batchSize) {
                let m = Swift.min(batchSize, n - start)
                parts.append(projectImageFeatures(imageFeatures(rows.slice(axis: 0, start: start, length: m).reshape([m, 3, s, s]))))
            }
            return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
        }
    }

    /// One row per picture in `data` [N, imageRowDimension], what training draws its batches from and
    /// `embedImageRows` embeds: the locked image tower's features, or for a from-scratch tower (which changes
    /// while it trains) the pictures as it takes them, flattened. Locked features are cached in chunks of 1,024
    /// source pictures, so subsets of one source (a limit, held-out classes) share them. With `showProgress`, a bar
    /// counts the pictures that go through the tower (none when all are cached).
    public func imageFeatures(of data: CaptionedImages, cache: CLIPFeatureCache, batchSize: Int = 64,
                              showProgress: Bool = false) throws -> Tensor {
        if config.trainsImageTower {
            let d = imageRowDimension
            let gib = Double(data.count) * Double(d) * 4 / Double(1 << 30)
            guard gib <= 8 else {
                throw AttendError(String(format: "a trained image tower takes the pictures themselves: %d pictures at %d x %d would hold %.1f GiB (at most 8); use fewer pictures or a smaller image size",
                                         data.count, config.imageSize, config.imageSize, gib))
            }
            let out = Tensor(shape: [data.count, d])
            let bar = showProgress ? ProgressBar(total: data.count, label: "pictures", unit: "image") : nil
            for i in 0..<data.count {
                let x = imageInput(try data.image(i)).contiguous()
                (out.pointer + i * d).update(from: x.pointer, count: d)
                bar?.advance(1)
            }
            return out
        }
        let chunk = 1024
        let needed = cache.directory == nil ? [] : Set(data.sourceIndices.map { $0 / chunk }).sorted()
        let work = cache.directory == nil ? data.count : needed.reduce(0) { $0 + Swift.min(chunk, data.sourceCount - $1 * chunk) }
        var bar: ProgressBar?
        func compute(_ sources: [Int]) throws -> Tensor {
            if showProgress && bar == nil { bar = ProgressBar(total: work, label: "image features", unit: "image") }
            let progress = bar
            var parts: [Tensor] = []
            for start in stride(from: 0, to: sources.count, by: batchSize) {
                let end = Swift.min(sources.count, start + batchSize)
                let x = Tensor.stack(try sources[start..<end].map { imageInput(try data.image($0)) }, axis: 0)
                parts.append(imageFeatures(x))
                progress?.advance(end - start)
            }
            return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
        }
        guard cache.directory != nil else { return try compute(data.sourceIndices) }
        var chunks: [Int: Tensor] = [:]
        for c in needed {
            let range = (c * chunk)..<Swift.min(data.sourceCount, (c + 1) * chunk)
            chunks[c] = try cache.features(key: "\(config.imageTower.rawValue) \(config.imageSize)px \(data.identity) chunk \(c)") {
                try compute(Array(range))
            }
        }
        let d = config.imageFeatureDimension
        let out = Tensor(shape: [data.count, d])
        for (row, source) in data.sourceIndices.enumerated() {
            let t = chunks[source / chunk]!
            (out.pointer + row * d).update(from: t.pointer + (source % chunk) * d, count: d)
        }
        return out
    }

    /// Trains the projections, the temperature and any trained tower (the from-scratch ViT and text Transformer, the
    /// unlocked CNN) on `data`, whose rows from `imageFeatures(of:)` are `imageFeatures` (a trained image tower runs on
    /// each batch's pictures). Returns the trainer, whose loss history is the curve.
    ///
    /// ```swift
    /// let rows = try clip.imageFeatures(of: pairs, cache: CLIPFeatureCache(directory: ".cache/clip-features"))
    /// let trainer = try clip.train(on: pairs, imageFeatures: rows, config: CLIPTrainingConfig())
    /// try clip.saveModel(to: "clip.safetensors")
    /// ```
    ///
    /// With a `teacher`, each step adds `teacherWeight` times the distillation loss on `teacherBatch` of its crops.
    @discardableResult
    public func train(on data: CaptionedImages, imageFeatures: Tensor, config training: CLIPTrainingConfig,
                      teacher: CLIPTeacher? = nil, teacherWeight: Float = 1, teacherBatch: Int = 128,
                      share: DataParallelShare = .single, progress: ProgressBar? = nil) throws -> Trainer {
        try training.validate()
        guard data.count >= 2 else { throw AttendError("CLIP training needs at least 2 captioned pictures, got \(data.count)") }
        guard imageFeatures.shape == [data.count, imageRowDimension] else {
            throw AttendError("image features have shape \(imageFeatures.shape), expected [\(data.count), \(imageRowDimension)]")
        }
        // Locked text tower: every distinct caption embedded once.
        var captionIndex: [String: Int] = [:]
        var unique: [String] = []
        for group in data.captions { for c in group where captionIndex[c] == nil { captionIndex[c] = unique.count; unique.append(c) } }
        let textLocked = textTransformer == nil && unlockedTextTower == nil
        let lockedText: Tensor? = textLocked ? withNoGrad { textFeatures(unique) } : nil
        let lockedPrompts: Tensor? = textLocked ? teacher.map { t in withNoGrad { textFeatures(t.prompts) } } : nil
        let lockedKindPrompts: Tensor? = textLocked ? teacher.flatMap { t in t.kindPrompts.isEmpty ? nil : withNoGrad { textFeatures(t.kindPrompts) } } : nil
        if let teacher {
            guard !config.trainsImageTower else { throw AttendError("distillation from the ImageNet classifier needs the locked efficientnet-lite0 image tower") }
            guard !config.unlockTextTower else { throw AttendError("distillation from the ImageNet classifier needs the text tower locked (its 1,000 prompts would go through it every step)") }
            guard teacher.imageFeatures.shape[0] >= 1, teacherBatch >= 1 else { throw AttendError("the teacher needs at least one crop and a batch of at least 1") }
            guard teacherWeight.isFinite, teacherWeight >= 0 else { throw AttendError("the teacher's weight must be finite and >= 0, got \(teacherWeight)") }
        }

        let batch = Swift.min(training.batchSize, data.count)
        guard batch >= share.count else { throw AttendError("a batch of \(batch) pairs cannot be shared by \(share.count) processes") }
        let optimizer = Adam.decayingMatrices(of: self, learningRate: training.learningRate, beta2: 0.98, weightDecay: training.weightDecay)
        let schedule = WarmupCosineSchedule(peak: training.learningRate, warmupSteps: training.warmupSteps, totalSteps: training.steps)
        let trainer = Trainer(model: self, optimizer: optimizer, config: TrainerConfig(steps: training.steps), schedule: { schedule($0) })
        if share.count > 1 {
            // Data-parallel (open_clip's way): each process embeds its rows of the batch, gathers everyone's, and computes
            // the whole batch's loss, whose gradient reaches its own rows only; so the towers' gradients add up over the
            // processes. The temperature's is the whole loss's on every process: one copy counts. The distillation loss
            // runs on the first process alone, so its loss is the step's.
            trainer.gradientHook = { [self] parameters in
                if !share.isRoot { logitScale.grad = nil }
                try share.sumGradients(parameters)
            }
            trainer.lossHook = { try share.averageLoss($0, weight: share.isRoot ? 1 : 0) }
        }
        let mine = share.rows(of: batch)
        try trainer.run(progress: progress, rateUnit: "pairs") { step, _ in
            clampLogitScale()
            // The step picks the batch, so a run is reproducible: a partial Fisher-Yates draw of distinct pictures.
            var generator = RandomGenerator(seed: training.seed &* 0x9E37_79B9 &+ UInt64(step))
            var order = Array(0..<data.count)
            var captions: [String] = []
            for k in 0..<batch {
                let j = k + Int(generator.next() % UInt64(data.count - k))
                order.swapAt(k, j)
                let group = data.captions[order[k]]
                captions.append(group[Int(generator.next() % UInt64(group.count))])
            }
            let picked = IntTensor(order[mine].map { Int32($0) }, shape: [mine.count])
            let myCaptions = Array(captions[mine])
            var images = imageFeatures.indexSelect(picked)
            if config.trainsImageTower { images = self.imageFeatures(images.reshape([mine.count, 3, config.imageSize, config.imageSize])) }
            let texts = lockedText.map { $0.indexSelect(IntTensor(myCaptions.map { Int32(captionIndex[$0]!) }, shape: [mine.count])) }
                ?? textFeatures(myCaptions)
            var total = Loss.clip(imageEmbeddings: try share.gather(projectImageFeatures(images), batch: batch),
                                  textEmbeddings: try share.gather(projectTextFeatures(texts), batch: batch), logitScale: logitScale.exp())
            if let teacher {
                let m = teacher.imageFeatures.shape[0]
                let rows = (0..<Swift.min(teacherBatch, m)).map { _ in Int(generator.next() % UInt64(m)) }
                if share.isRoot {
                    let kindPrompts = teacher.kindPrompts.isEmpty ? nil : lockedKindPrompts ?? textFeatures(teacher.kindPrompts)
                    total = total + distillationLoss(teacher, rows: rows, promptFeatures: lockedPrompts ?? textFeatures(teacher.prompts),
                                                     kindPromptFeatures: kindPrompts) * teacherWeight
                }
            }
            return TrainingLoss(total, items: batch)
        }
        clampLogitScale()
        eval()   // an unlocked MiniLM has dropout: embeddings after training are the model's, not a sample
        return trainer
    }

    /// Zero-shot accuracy choosing among `classes` only (indices into `prompts`), over the pictures of those classes:
    /// whether a prompt for a class never seen in training finds its pictures once the seen classes are out of the way.
    public func zeroShotAccuracy(imageFeatures: Tensor, labels: [Int], prompts: [[String]], among classes: [Int]) -> Double {
        let rows = labels.indices.filter { classes.contains(labels[$0]) }
        guard !rows.isEmpty, classes.count >= 2 else { return .nan }
        return withNoGrad {
            let images = embedImageRows(imageFeatures.indexSelect(IntTensor(rows.map { Int32($0) }, shape: [rows.count])))
            let p = zeroShot(images, classes: classes.map { prompts[$0] }).toArray()
            let c = classes.count
            var right = 0
            for (r, i) in rows.enumerated() {
                let best = (0..<c).max { p[r * c + $0] < p[r * c + $1] }!
                if classes[best] == labels[i] { right += 1 }
            }
            return Double(right) / Double(rows.count)
        }
    }

    /// Zero-shot accuracy per class (prompts `prompts[c]` per class, an ensemble) on pictures whose features are
    /// `imageFeatures`, and recall@1/5/10 both ways over the first `pairs` pictures paired with their first caption.
    public func evaluate(on data: CaptionedImages, imageFeatures: Tensor, prompts: [[String]], pairs: Int = 1000) throws -> CLIPEvaluation {
        guard let labels = data.labels, let names = data.classNames else {
            throw AttendError("zero-shot evaluation needs pictures with classes (Fashion-MNIST or an image folder)")
        }
        guard prompts.count == names.count else { throw AttendError("\(prompts.count) prompt groups for \(names.count) classes") }
        return withNoGrad {
            let images = embedImageRows(imageFeatures)
            let probabilities = zeroShot(images, classes: prompts)
            let c = names.count
            var right = [Int](repeating: 0, count: c), seen = [Int](repeating: 0, count: c)
            let p = probabilities.contiguous().pointer
            for i in 0..<data.count {
                var best = 0
                for k in 1..<c where p[i * c + k] > p[i * c + best] { best = k }
                seen[labels[i]] += 1
                if best == labels[i] { right[labels[i]] += 1 }
            }
            let scores = (0..<c).map { CLIPEvaluation.ClassScore(name: names[$0], count: seen[$0], accuracy: seen[$0] == 0 ? .nan : Double(right[$0]) / Double(seen[$0])) }
            let total = right.reduce(0, +)

            // Captions repeat across pictures (a class and a shade), so image -> text ranks the distinct captions and
            // text -> image counts a retrieved picture as a hit when its caption is the query.
            let n = Swift.min(pairs, data.count)
            let captions = (0..<n).map { data.captions[$0][0] }
            var distinct: [String] = [], position: [String: Int] = [:]
            for c in captions where position[c] == nil { position[c] = distinct.count; distinct.append(c) }
            let m = distinct.count
            let similarity = images.slice(axis: 0, start: 0, length: n).matmul(embedTexts(distinct).transposed(0, 1)).contiguous()
            let s = similarity.pointer
            let ks = [1, 5, 10]
            var imageHits = [Int](repeating: 0, count: ks.count), textHits = [Int](repeating: 0, count: ks.count)
            for q in 0..<n {
                let own = position[captions[q]]!
                let rank = (0..<m).filter { s[q * m + $0] > s[q * m + own] }.count
                for (j, k) in ks.enumerated() where rank < k { imageHits[j] += 1 }
                let ranked = (0..<n).sorted { s[$0 * m + own] > s[$1 * m + own] }
                for (j, k) in ks.enumerated() where ranked.prefix(k).contains(where: { captions[$0] == captions[q] }) { textHits[j] += 1 }
            }
            let imageToText = imageHits.map { Double($0) / Double(Swift.max(n, 1)) }
            let textToImage = textHits.map { Double($0) / Double(Swift.max(n, 1)) }
            return CLIPEvaluation(classes: scores, accuracy: Double(total) / Double(Swift.max(data.count, 1)),
                                  imageToText: imageToText, textToImage: textToImage, pairs: n)
        }
    }
}

/// The pretrained ImageNet classifier as a teacher: for photo crops, its class probabilities, which CLIP's
/// similarities to one prompt per class ("a photo of a tabby") are trained to reproduce (soft-target cross-entropy,
/// as in knowledge distillation). It teaches the shared space the classifier's 1,000 everyday classes, which no
/// caption data set on these machines names.
public struct CLIPTeacher {
    /// One prompt per ImageNet class, from its first name.
    public var prompts: [String]
    /// The crops' pooled image features [M, 1280].
    public var imageFeatures: Tensor
    /// The classifier's probabilities for them [M, 1000].
    public var probabilities: Tensor
    /// One prompt per general kind of the classes ("a photo of a dog"), when the teacher was given `kinds`.
    public var kindPrompts: [String] = []
    /// The classifier's probability of each kind, the sum over its classes, each row divided by its sum [M, kinds]:
    /// what the similarities to `kindPrompts` are trained to reproduce, in a second softmax beside the classes'. Rows
    /// of photo crops are zero (no kind target): only the class prototypes teach the kinds.
    public var kindProbabilities: Tensor?
    /// The kinds' loss's weight beside the classes'. Higher weights (2, 5) taught the general words a little more
    /// (Tux Paint's stamps by category, docs/BENCHMARKS.md) and cost one or two of 24 everyday photos named among
    /// specific labels.
    public var kindWeight: Float = 0.5

    /// The classifier's view of `crops` (features through `clip`'s locked image tower, cached), class names from
    /// `labels`. With `classPrototypes`, one synthetic feature per class joins the crops (see `prototypes`).
    /// With `kinds`, the general kinds the classes belong to are taught too, so that a user's "a dog" finds the
    /// 118 breeds the classifier knows.
    public init(clip: CLIP, crops: CaptionedImages, labels: ImageNetLabels, cache: CLIPFeatureCache, classPrototypes: Bool = true,
                kinds: ImageNetKinds? = nil, showProgress: Bool = false) throws {
        var features = try clip.imageFeatures(of: crops, cache: cache, showProgress: showProgress)
        guard let classifier = clip.towers.imageEncoder?.classifier else {
            throw AttendError("the ImageNet teacher needs a CLIP model whose image tower is efficientnet-lite0")
        }
        if classPrototypes { features = Tensor.concat([features, CLIPTeacher.prototypes(classifier, meanNormOf: features)], axis: 0) }
        imageFeatures = features
        probabilities = withNoGrad { classifier(features).softmax(axis: -1) }
        prompts = labels.names.map { name in
            "a photo of " + ClassCaptions.withArticle(String(name.split(separator: ",").first ?? Substring(name)).trimmingCharacters(in: .whitespaces))
        }
        if let kinds, !kinds.names.isEmpty {
            guard classPrototypes else { throw AttendError("the classes' general kinds are taught on the class prototypes: they need classPrototypes") }
            kindPrompts = kinds.names.map { "a photo of " + ClassCaptions.withArticle($0) }
            let mass = withNoGrad { probabilities.matmul(kinds.membership(classCount: probabilities.shape[1])) }.contiguous()
            let (m, k) = (mass.shape[0], mass.shape[1])
            // Only the prototypes' rows (the last 1,000) keep their targets. On wallpaper crops the classifier is
            // unsure, and its spread-out answers (textures read as soups and sauces) made the broad kinds' prompts,
            // "a photo of a food" most of all, the nearest to any real photo: scikit-image's cat came out as food.
            let crops = m - probabilities.shape[1]
            for i in 0..<crops * k { mass.pointer[i] = 0 }
            for i in crops..<m {
                var s: Float = 0
                for j in 0..<k { s += mass.pointer[i * k + j] }
                let scale = s > 0 ? 1 / s : 0
                for j in 0..<k { mass.pointer[i * k + j] *= scale }
            }
            kindProbabilities = mass
        }
    }
}

extension CLIPTeacher {
    /// One feature vector per class, what the classifier itself takes a class to look like: the positive part of the
    /// class's row of the classifier (pooled features are never negative), scaled to the mean norm of `features`.
    /// Photos at hand cover few of the 1,000 classes (these machines have landscapes, not cats); the prototypes
    /// give every class a point in feature space, so the projection learns each class's direction. On scikit-image's
    /// photos they lift zero-shot answers from 2 of 10 right to 6 of 10 (docs/BENCHMARKS.md).
    public static func prototypes(_ classifier: Linear, meanNormOf features: Tensor) -> Tensor {
        let w = classifier.weight.contiguous(), f = features.contiguous()
        let (classes, d, n) = (w.shape[0], w.shape[1], f.shape[0])
        var norm: Float = 0
        for i in 0..<n {
            var s: Float = 0
            for k in 0..<d { s += f.pointer[i * d + k] * f.pointer[i * d + k] }
            norm += s.squareRoot()
        }
        norm /= Float(Swift.max(n, 1))
        let out = Tensor(shape: [classes, d])
        for c in 0..<classes {
            var s: Float = 0
            for k in 0..<d { let v = Swift.max(w.pointer[c * d + k], 0); out.pointer[c * d + k] = v; s += v * v }
            let scale = norm / Swift.max(s.squareRoot(), 1e-6)
            for k in 0..<d { out.pointer[c * d + k] *= scale }
        }
        return out
    }
}

extension CLIP {
    /// The distillation loss on crops `rows` of `teacher`: cross-entropy of the teacher's probabilities against the
    /// softmax of the scaled similarities to the class prompts (whose text features are `promptFeatures`).
    /// With the teacher's kinds and their prompts' features `kindPromptFeatures`, the same loss over the kinds is added,
    /// times the teacher's `kindWeight`.
    public func distillationLoss(_ teacher: CLIPTeacher, rows: [Int], promptFeatures: Tensor, kindPromptFeatures: Tensor? = nil) -> Tensor {
        let picked = IntTensor(rows.map { Int32($0) }, shape: [rows.count])
        let images = projectImageFeatures(teacher.imageFeatures.indexSelect(picked))
        func softCrossEntropy(_ targets: Tensor, _ promptFeatures: Tensor) -> Tensor {
            let prompts = projectTextFeatures(promptFeatures)
            let logp = (images.matmul(prompts.transposed(0, 1)) * logitScale.exp().reshape([1, 1])).logSoftmax(axis: -1)
            return -(targets.indexSelect(picked) * logp).sum() * (1 / Float(rows.count))
        }
        let loss = softCrossEntropy(teacher.probabilities, promptFeatures)
        guard let kindTargets = teacher.kindProbabilities, let kindPromptFeatures else { return loss }
        return loss + softCrossEntropy(kindTargets, kindPromptFeatures) * teacher.kindWeight
    }
}
