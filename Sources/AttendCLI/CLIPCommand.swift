import ArgumentParser
import AttendDatasets
import AttendModels
import AttendNN
import AttendPlots
import AttendTensor
import AttendVision
import Foundation

struct CLIPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip",
        abstract: "CLIP: pictures and captions in one vector space; zero-shot classification and search by text.",
        discussion: "Fetch the towers first: scripts/fetch-assets.sh efficientnet-lite0 all-MiniLM-L6-v2 clip-bpe",
        subcommands: [CLIPTrainCommand.self, CLIPClassifyCommand.self, CLIPEvaluateCommand.self, CLIPSearchCommand.self, CLIPMatrixCommand.self])
}

/// Where the pretrained towers and the feature cache are.
struct CLIPTowerOptions: ParsableArguments {
    @Option(help: "A torch.save EfficientNet-Lite0 checkpoint (the image tower).") var efficientnet: String?
    @Option(help: "The all-MiniLM-L6-v2 folder (the pretrained text tower).") var minilm: String?
    @Option(name: .customLong("clip-bpe"), help: "CLIP's BPE merges (bpe_simple_vocab_16e6.txt.gz; the from-scratch text tower).") var clipBPE: String?
    @Option(help: "Folder for cached locked-tower features ('none' turns caching off).") var cache = ".cache/clip-features"

    func towers(for config: CLIPConfig) throws -> CLIPTowers {
        try CLIPTowers.load(for: config, efficientNet: efficientnet ?? ImageAssets.efficientNetLite0,
                            miniLM: minilm ?? ImageAssets.root + "/all-MiniLM-L6-v2",
                            clipMerges: clipBPE ?? ImageAssets.root + "/clip-bpe/bpe_simple_vocab_16e6.txt.gz")
    }

    var featureCache: CLIPFeatureCache { CLIPFeatureCache(directory: cache == "none" ? nil : cache) }

    func load(_ model: String) throws -> CLIP {
        let (config, _) = try CLIP.read(model)
        return try CLIP.load(model, towers: try towers(for: config))
    }
}

/// The two image towers by their command-line names.
enum CLIPImageTowerOption: String, ExpressibleByArgument, CaseIterable {
    case efficientnet = "efficientnet-lite0", vit
    var tower: CLIPConfig.ImageTower { self == .efficientnet ? .efficientNetLite0 : .vit }
}

/// The two text towers by their command-line names.
enum CLIPTextTowerOption: String, ExpressibleByArgument, CaseIterable {
    case minilm, transformer
    var tower: CLIPConfig.TextTower { self == .minilm ? .miniLM : .transformer }
}

/// The photo files named by an option such as --photos (folders are searched for PNG and JPEG files).
func photoFiles(_ photos: [String], option: String = "--photos") throws -> [String] {
    var files: [String] = []
    for path in photos {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw AttendError("\(option): \(path): no such file or folder") }
        if isDirectory.boolValue {
            files += (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                .filter { ImageFolder.extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
                .map { (path as NSString).appendingPathComponent($0) }
        } else {
            files.append(path)
        }
    }
    guard !files.isEmpty else { throw AttendError("\(option): no .png, .jpg or .jpeg file in \(photos.joined(separator: ", "))") }
    return files
}

/// The labelled data sets built in (captioned by `ClassCaptions`), by their --data names.
enum LabelledData: String {
    case fashionMNIST = "fashion-mnist", digits

    var captioner: ClassCaptions { self == .fashionMNIST ? .fashionMNIST : .digits }

    /// scikit-learn's digits have no split: the first 1,297 are for training, the last 500 for testing.
    static let digitsTestCount = 500

    func load(fashionDirectory: String, digitsFile: String, train: Bool) throws -> (ImageDataset, String) {
        switch self {
        case .fashionMNIST:
            return (try ImageDataset.fashionMNIST(directory: fashionDirectory, train: train), "\(fashionDirectory) \(train ? "train" : "test")")
        case .digits:
            let all = try Digits.load(digitsFile)
            let cut = max(all.count - LabelledData.digitsTestCount, 0)
            return (train ? all.subset(0..<cut) : all.subset(cut..<all.count), "\(digitsFile) \(train ? "train" : "test")")
        }
    }

    /// Class indices for a comma-separated list of names (any of a class's caption names).
    func classIndices(_ list: String, option: String) throws -> Set<Int> {
        var out: Set<Int> = []
        let names = captioner.names
        for raw in list.split(separator: ",") {
            let name = raw.trimmingCharacters(in: .whitespaces).lowercased()
            let extra = self == .fashionMNIST ? FashionMNIST.classNames.map { $0.lowercased() } : Digits.classNames
            guard let c = names.indices.first(where: { names[$0].contains(name) || extra[$0] == name }) else {
                throw ValidationError("\(option): '\(name)' is not a \(rawValue) class (one of: \(names.map { $0[0] }.joined(separator: ", ")))")
            }
            out.insert(c)
        }
        return out
    }
}

/// Where the built-in data sets are.
struct CLIPDataOptions: ParsableArguments {
    @Option(help: "fashion-mnist, digits (scikit-learn's), a TSV of image path TAB caption, or a folder of pictures each with a .txt caption beside it (e.g. /usr/share/tuxpaint/stamps).") var data = "fashion-mnist"
    @Option(name: .customLong("fashion-mnist"), help: "Folder with Fashion-MNIST's IDX files.") var fashionDirectory = FashionMNIST.defaultDirectory
    @Option(name: .customLong("digits"), help: "scikit-learn's digits.csv.gz.") var digitsFile = ImageAssets.root + "/scikit-learn-data/digits.csv.gz"
    @Option(help: "Use at most this many pictures.") var limit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
    }

    var labelled: LabelledData? { LabelledData(rawValue: data) }

    /// The pictures and captions of the split; classes in `excluding` (names) are left out.
    func load(train: Bool, excluding: String = "") throws -> CaptionedImages {
        if let labelled {
            let (set, split) = try labelled.load(fashionDirectory: fashionDirectory, digitsFile: digitsFile, train: train)
            return CaptionedImages.labelled(set, captioner: labelled.captioner, split: split,
                                            excluding: try labelled.classIndices(excluding, option: "--exclude"), limit: limit)
        }
        guard excluding.isEmpty else { throw ValidationError("--exclude works with --data fashion-mnist or digits only") }
        var isDirectory: ObjCBool = false
        let pairs = FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory) && isDirectory.boolValue
            ? try CaptionedImages.captionFiles([data]) : try CaptionedImages.tsv(data)
        return limit.map { pairs.prefix($0) } ?? pairs
    }
}

struct CLIPTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train CLIP: projections and temperature over locked pretrained towers (LiT), or towers from scratch.",
        discussion: """
            --data fashion-mnist or digits captions each picture with its class (synonyms), its kind and (garments) its \
            shade; a TSV file gives image-path TAB caption per line. --initialize fine-tunes an existing model on new pairs. \
            --image-tower vit --text-tower transformer trains a whole CLIP from scratch.
            """)
    @OptionGroup var data: CLIPDataOptions
    @Option(name: .customLong("image-tower"), help: "efficientnet-lite0 (pretrained, locked) or vit (from scratch).") var imageTower: CLIPImageTowerOption?
    @Option(name: .customLong("text-tower"), help: "minilm (pretrained, locked) or transformer (from scratch).") var textTower: CLIPTextTowerOption?
    @Option(name: .customLong("image-size"), help: "Side of the square the image tower sees (efficientnet-lite0: 32-1024, default 96; vit: a multiple of --patch-size, default 28).") var imageSize: Int?
    @Option(name: .customLong("patch-size"), help: "The ViT's patch side (1-64).") var patchSize = 7
    @Option(name: .customLong("vision-width"), help: "The ViT's width (8-2048).") var visionWidth = 128
    @Option(name: .customLong("vision-layers"), help: "The ViT's blocks (1-24).") var visionLayers = 4
    @Option(name: .customLong("vision-heads"), help: "The ViT's attention heads (dividing its width).") var visionHeads = 4
    @Flag(name: .customLong("unlock-text-tower"), help: "Fine-tune the pretrained all-MiniLM-L6-v2 tower with the rest (the model then holds its weights, 87 MiB; use a lower --learning-rate).") var unlockTextTower = false
    @Flag(name: .customLong("unlock-image-tower"), help: "Fine-tune the pretrained efficientnet-lite0 tower with the rest (the model then holds its weights; use a lower --learning-rate).") var unlockImageTower = false
    @Option(help: "Width of the shared space (2-4096).") var dimension = 256
    @Option(name: .customLong("image-hidden"), help: "Hidden width of a two-layer image projection (0: linear).") var imageHidden = 0
    @Option(help: "Classes to leave out of training, comma-separated (held out for zero-shot; fashion-mnist or digits).") var exclude = ""
    @Option(help: "Optimizer steps.") var steps = 1000
    @Option(name: .customLong("batch-size"), help: "Pairs per step (2-65536).") var batchSize = 256
    @Option(name: .customLong("learning-rate"), help: "Peak learning rate (AdamW, warmup then cosine).") var learningRate: Float = 1e-3
    @Option(name: .customLong("weight-decay"), help: "AdamW's decay of the matrices.") var weightDecay: Float = 0.1
    @Option(help: "Seed of the initialization and the batches.") var seed: UInt64 = 1
    @Option(help: "Fine-tune this CLIP model instead of starting new projections.") var initialize: String?
    @Option(name: .customLong("loss-curve"), help: "Write the loss curve here (PNG).") var lossCurve: String?
    @Option(parsing: .upToNextOption, help: "Photos (or folders of them) to crop for distillation from the ImageNet classifier: its 1,000 classes join the shared space.") var photos: [String] = []
    @Option(name: .customLong("crops-per-photo"), help: "Random square crops per photo (1-100000).") var cropsPerPhoto = 200
    @Option(name: .customLong("teacher-weight"), help: "Weight of the distillation loss (finite, >= 0).") var teacherWeight: Float = 1
    @Option(help: "A folder with imagenet_synsets.txt and imagenet_synset_to_lemma.txt (the teacher's class names).") var labels: String?
    @Option(help: "WordNet's data.noun (Debian's wordnet-base: /usr/share/wordnet/data.noun): teach the general kinds of the ImageNet classes too (\"a dog\", \"a vehicle\") on the class prototypes, each kind the sum of its classes' probabilities. Needs --photos.") var wordnet: String?
    @Flag(name: .customLong("no-prototypes"), help: "Distil from the photo crops alone, without one synthetic feature per ImageNet class.") var noPrototypes = false
    @Option(name: .shortAndLong, help: "Where to write the model (.safetensors).") var output: String
    @Option(name: .customLong("loss-log"), help: "Write each step's loss, one per line.") var lossLog: String?
    @Flag(help: "Join an MPI job started without a launcher's environment (mpirun and srun are detected without this).") var distributed = false
    @OptionGroup var towers: CLIPTowerOptions

    func validate() throws {
        if let imageSize {
            if imageTower == .vit {
                guard (4...1024).contains(imageSize), (1...64).contains(patchSize), imageSize % patchSize == 0 else {
                    throw ValidationError("--image-size must be 4...1024 and a multiple of --patch-size \(patchSize) (1-64), got \(imageSize)")
                }
            } else {
                guard (32...1024).contains(imageSize) else { throw ValidationError("--image-size must be 32...1024, got \(imageSize)") }
            }
        }
        guard (1...64).contains(patchSize) else { throw ValidationError("--patch-size must be 1...64, got \(patchSize)") }
        guard (8...2048).contains(visionWidth) else { throw ValidationError("--vision-width must be 8...2048, got \(visionWidth)") }
        guard (1...24).contains(visionLayers) else { throw ValidationError("--vision-layers must be 1...24, got \(visionLayers)") }
        guard (1...64).contains(visionHeads), visionWidth % visionHeads == 0 else {
            throw ValidationError("--vision-heads must be 1...64 and divide --vision-width \(visionWidth), got \(visionHeads)")
        }
        if imageTower == .vit && !photos.isEmpty { throw ValidationError("--photos (distillation from the ImageNet classifier) needs --image-tower efficientnet-lite0") }
        if imageTower == .vit && unlockImageTower { throw ValidationError("--unlock-image-tower is for efficientnet-lite0; the vit tower always trains") }
        if unlockImageTower && !photos.isEmpty { throw ValidationError("--photos (distillation from the ImageNet classifier) needs the image tower locked; leave out --unlock-image-tower") }
        if textTower == .transformer && unlockTextTower { throw ValidationError("--unlock-text-tower is for minilm; the transformer tower always trains") }
        if unlockTextTower && !photos.isEmpty { throw ValidationError("--photos (distillation from the ImageNet classifier) needs the text tower locked; leave out --unlock-text-tower") }
        if wordnet != nil && photos.isEmpty { throw ValidationError("--wordnet (the classes' general kinds) needs --photos (distillation from the ImageNet classifier)") }
        if wordnet != nil && noPrototypes { throw ValidationError("--wordnet teaches the classes' general kinds on the class prototypes; leave out --no-prototypes") }
        guard (2...4096).contains(dimension) else { throw ValidationError("--dimension must be 2...4096, got \(dimension)") }
        guard (0...8192).contains(imageHidden) else { throw ValidationError("--image-hidden must be 0...8192, got \(imageHidden)") }
        guard (1...10_000_000).contains(steps) else { throw ValidationError("--steps must be 1...10000000, got \(steps)") }
        guard (2...65_536).contains(batchSize) else { throw ValidationError("--batch-size must be 2...65536, got \(batchSize)") }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 1 else { throw ValidationError("--learning-rate must be in (0, 1], got \(learningRate)") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw ValidationError("--weight-decay must be finite and >= 0, got \(weightDecay)") }
        guard output.hasSuffix(".safetensors") else { throw ValidationError("--output must end in .safetensors") }
        if let lossCurve, !lossCurve.lowercased().hasSuffix(".png") { throw ValidationError("--loss-curve must end in .png") }
        guard (1...100_000).contains(cropsPerPhoto) else { throw ValidationError("--crops-per-photo must be 1...100000, got \(cropsPerPhoto)") }
        guard teacherWeight.isFinite, teacherWeight >= 0 else { throw ValidationError("--teacher-weight must be finite and >= 0, got \(teacherWeight)") }
    }

    func run() throws {
        let inputs = [data.data] + (initialize.map { [$0] } ?? []) + photos + (wordnet.map { [$0] } ?? [])
        try OutputPath.check(output, isNotInput: inputs)
        if let lossLog { try OutputPath.check(lossLog, isNotInput: inputs + [output]) }
        var training = CLIPTrainingConfig()
        training.steps = steps
        training.batchSize = batchSize
        training.learningRate = learningRate
        training.weightDecay = weightDecay
        training.seed = seed
        training.warmupSteps = min(50, steps / 10)
        try training.validate()
        // The teacher's files are read before any picture is embedded: a bad one fails in a second, not minutes later.
        var teacherInputs: (files: [String], names: ImageNetLabels, kinds: ImageNetKinds?)?
        if !photos.isEmpty {
            let files = try photoFiles(photos)
            // Each crop's features take 5 KiB: at most 200,000 crops (1 GiB).
            guard files.count * cropsPerPhoto <= 200_000 else {
                throw AttendError("--photos: \(files.count) photos x --crops-per-photo \(cropsPerPhoto) is more than 200,000 crops")
            }
            let names = try ImageNetLabels.load(folder: labels ?? ImageAssets.imageNetLabels)
            teacherInputs = (files, names, try wordnet.map { try ImageNetKinds(labels: names, nouns: try WordNetNouns.load(path: $0)) })
        }
        let pairs = try data.load(train: true, excluding: exclude)
        guard pairs.count >= 2 else { throw AttendError("\(data.data): fewer than 2 captioned pictures to train on") }

        let clip: CLIP
        if let initialize {
            let (config, _) = try CLIP.read(initialize)
            if let textTower, textTower.tower != config.textTower {
                throw AttendError("\(initialize): the model's text tower is \(config.textTower.rawValue), but --text-tower says \(textTower.rawValue)")
            }
            if let imageTower, imageTower.tower != config.imageTower {
                throw AttendError("\(initialize): the model's image tower is \(config.imageTower.rawValue), but --image-tower says \(imageTower.rawValue)")
            }
            let loaded = try CLIP.load(initialize, towers: try towers.towers(for: config))
            if (unlockImageTower && !config.unlockImageTower) || (unlockTextTower && !config.unlockTextTower) {
                // LiT, then unlocked: the same projections and temperature over trainable copies of the towers.
                var unlocked = config
                unlocked.unlockImageTower = config.unlockImageTower || unlockImageTower
                unlocked.unlockTextTower = config.unlockTextTower || unlockTextTower
                try unlocked.validate(source: initialize)
                clip = CLIP(unlocked, towers: loaded.towers, seed: seed)
                try clip.load(Dictionary(uniqueKeysWithValues: loaded.namedTensors().map { ($0.name, $0.tensor) }), source: initialize, strict: false)
            } else {
                clip = loaded
            }
        } else {
            var config = CLIPConfig(imageTower: (imageTower ?? .efficientnet).tower, textTower: (textTower ?? .minilm).tower)
            config.imageSize = imageSize ?? (imageTower == .vit ? 28 : 96)
            config.patchSize = patchSize
            config.visionWidth = visionWidth
            config.visionLayers = visionLayers
            config.visionHeads = visionHeads
            config.unlockImageTower = unlockImageTower
            config.unlockTextTower = unlockTextTower
            config.embeddingDimension = dimension
            config.imageProjectionHidden = imageHidden
            let loaded = try towers.towers(for: config)
            if let tokenizer = loaded.tokenizer {
                config.vocabulary = Array(Set(pairs.captions.flatMap { $0.flatMap { tokenizer.encode($0) } })).sorted()
            }
            try config.validate(source: "the options")
            clip = CLIP(config, towers: loaded, seed: seed)
        }
        let parallel = try DataParallelRun.start(distributed: distributed)
        func say(_ line: String) { if parallel.isRoot { print(line) } }
        let started = Date()
        // With a cache, rank 0 fills it and the others read it; without one, every rank computes the features.
        let features = towers.featureCache.directory == nil
            ? try clip.imageFeatures(of: pairs, cache: towers.featureCache, showProgress: parallel.isRoot)
            : try parallel.rootFirst { try clip.imageFeatures(of: pairs, cache: towers.featureCache, showProgress: parallel.isRoot) }
        let featureSeconds = Date().timeIntervalSince(started)
        var teacher: CLIPTeacher?
        if let (files, names, kinds) = teacherInputs {
            if let kinds { say("--wordnet: \(kinds.names.count) general kinds of the 1,000 classes") }
            teacher = try parallel.rootFirst {
                try CLIPTeacher(clip: clip, crops: try CaptionedImages.photoCrops(files, cropsPerPhoto: cropsPerPhoto), labels: names,
                                cache: towers.featureCache, classPrototypes: !noPrototypes, kinds: kinds, showProgress: parallel.isRoot)
            }
        }
        try parallel.requireSameStart(settings: "\(clip.config) \(training) \(teacherWeight) \(teacher?.kindPrompts.count ?? 0) \(pairs.identity)", dataBytes: features.count + (teacher?.imageFeatures.count ?? 0))
        try parallel.synchronize(clip, step: 0)
        if parallel.size > 1 { say("\(parallel.size) processes (MPI), each embedding its share of every batch of \(min(batchSize, pairs.count)) pairs") }
        let trainStarted = Date()
        let trainer = try clip.train(on: pairs, imageFeatures: features, config: training, teacher: teacher, teacherWeight: teacherWeight,
                                     share: parallel.share, progress: parallel.isRoot ? ProgressBar(total: steps, label: "clip", unit: "step") : nil)
        let seconds = Date().timeIntervalSince(trainStarted)
        try parallel.finish(clip, trainingSeconds: seconds)
        guard parallel.isRoot else { return }
        try clip.saveModel(to: output, metadata: ["steps": String(steps), "data": pairs.identity.prefix(200).description,
                                             "command": CommandLine.arguments.dropFirst().joined(separator: " ")])
        print(String(format: "%d pairs; image features %.1f s; %d steps in %.1f s (%.0f pairs/s); loss %.4f (last 20 steps); temperature 1/%.1f",
                     pairs.count, featureSeconds, steps, seconds, Double(steps * min(batchSize, pairs.count)) / max(seconds, 1e-9),
                     trainer.recentLoss(20), clip.scale))
        print("wrote \(output)")
        if let lossLog { try AtomicFile.write(Data(trainer.lossHistory.map { "\($0.loss)\n" }.joined().utf8), to: lossLog) }
        if let lossCurve {
            try LineChartFile.write(trainer.lossHistory, to: lossCurve)
            print("wrote \(lossCurve)")
        }
    }
}

/// Labels with a template into prompts: `{}` replaced by each label.
func prompts(labels: String, templates: [String]) throws -> (names: [String], prompts: [[String]]) {
    let names = labels.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard !names.isEmpty, !labels.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--labels: give at least one label") }
    guard !names.contains(where: \.isEmpty) else { throw ValidationError("--labels: an empty label in '\(labels)'") }
    guard Set(names).count == names.count else { throw ValidationError("--labels: a label is repeated in '\(labels)'") }
    for t in templates where !t.contains("{}") { throw ValidationError("--template '\(t)' has no {} for the label") }
    return (names, names.map { n in templates.map { $0.replacingOccurrences(of: "{}", with: n) } })
}

struct CLIPClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Zero-shot classification: the probability of each label for each picture, from prompts alone.")
    @Option(help: "A CLIP model from attend clip train.") var model = "models/clip.safetensors"
    @Option(help: "Labels, comma-separated.") var labels: String
    @Option(help: "Prompt template with {} for the label; repeat for an ensemble.") var template: [String] = ["a photo of a {}"]
    @Option(help: "Labels to print per picture.") var top: Int?
    @Flag(help: "One JSON object per picture.") var json = false
    @Option(help: "Write a PNG of where in the picture the winning label matches (one picture only).") var explain: String?
    @Argument(help: "Pictures (PNG or JPEG).") var images: [String]
    @OptionGroup var towers: CLIPTowerOptions

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give one or more pictures") }
        if let explain {
            guard images.count == 1 else { throw ValidationError("--explain takes one picture, got \(images.count)") }
            guard explain.lowercased().hasSuffix(".png") else { throw ValidationError("--explain must end in .png") }
        }
        _ = try prompts(labels: labels, templates: template)
        if let top, top < 1 { throw ValidationError("--top must be at least 1, got \(top)") }
    }

    func run() throws {
        let (names, classPrompts) = try prompts(labels: labels, templates: template)
        if let explain { try OutputPath.check(explain, isNotInput: images + [model]) }
        let clip = try towers.load(model)
        var failures = 0
        var pictures: [(String, Image)] = []
        for path in images {
            do {
                pictures.append((path, try readPicture(path)))
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("\(error)\n".utf8))
            }
        }
        if !pictures.isEmpty {
            let p = clip.zeroShot(clip.embedImages(pictures.map(\.1)), classes: classPrompts).toArray()
            let c = names.count
            for (row, (path, _)) in pictures.enumerated() {
                let order = (0..<c).sorted { p[row * c + $0] > p[row * c + $1] }.prefix(top ?? c)
                if json {
                    let classes = order.map { ["label": names[$0], "probability": Double(p[row * c + $0])] as [String: Any] }
                    let data = try JSONSerialization.data(withJSONObject: ["file": path, "labels": classes], options: [.sortedKeys])
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    print(path)
                    for k in order { print(String(format: "  %6.2f%%  %@", 100 * p[row * c + k], names[k])) }
                }
            }
            if let explain, let (_, picture) = pictures.first {
                let best = (0..<c).max { p[$0] < p[$1] }!
                let text = clip.classEmbeddings([classPrompts[best]])
                try clip.explanationImage(picture, heat: clip.regionSimilarities(picture, text: text)).write(to: explain)
                if !json { print("wrote \(explain): where '\(names[best])' matches") }
            }
        }
        if failures > 0 { throw AttendError("\(failures) of \(images.count) pictures could not be read") }
    }
}

struct CLIPEvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Zero-shot accuracy per class (prompt ensembles) and recall@1/5/10 both ways on held-out pairs.")
    @Option(help: "A CLIP model from attend clip train.") var model = "models/clip.safetensors"
    @OptionGroup var data: CLIPDataOptions
    @Option(help: "Prompt template with {} for the class name with its article; repeat for an ensemble (default: three).") var template: [String] = []
    @Option(name: .customLong("held-out"), help: "Classes left out of training, comma-separated: their accuracy is printed apart.") var heldOut = ""
    @Option(help: "Pairs for recall@K (the first test pictures, each with its first caption).") var pairs = 1000
    @Flag(help: "Print the evaluation as JSON.") var json = false
    @OptionGroup var towers: CLIPTowerOptions

    func validate() throws {
        for t in template where !t.contains("{}") { throw ValidationError("--template '\(t)' has no {} for the class name") }
        guard pairs >= 1 else { throw ValidationError("--pairs must be at least 1, got \(pairs)") }
        guard let labelled = data.labelled else { throw ValidationError("--data must be fashion-mnist or digits (a data set with classes)") }
        _ = try labelled.classIndices(heldOut, option: "--held-out")
    }

    func run() throws {
        let clip = try towers.load(model)
        let labelled = data.labelled!
        let test = try data.load(train: false)
        let features = try clip.imageFeatures(of: test, cache: towers.featureCache, showProgress: true)
        let captioner = labelled.captioner
        let classPrompts = captioner.prompts(templates: template.isEmpty ? captioner.promptTemplates : template)
        let result = try clip.evaluate(on: test, imageFeatures: features, prompts: classPrompts, pairs: pairs)
        let heldIndices = try labelled.classIndices(heldOut, option: "--held-out").sorted()
        let held = Set(heldIndices.map { captioner.names[$0][0] })
        let amongHeld = clip.zeroShotAccuracy(imageFeatures: features, labels: test.labels!, prompts: classPrompts, among: heldIndices)
        if json {
            var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(result)) as! [String: Any]
            if !held.isEmpty { object["held_out_accuracy"] = result.accuracy(over: held) }
            if heldIndices.count >= 2 { object["held_out_among_themselves"] = amongHeld }
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("zero-shot accuracy on \(test.count) \(labelled.rawValue) test pictures: \(String(format: "%.2f%%", 100 * result.accuracy))")
        for c in result.classes {
            let name = c.name.padding(toLength: max(18, c.name.count), withPad: " ", startingAt: 0)
            print("  " + name + String(format: " %5d  %6.2f%%", c.count, 100 * c.accuracy) + (held.contains(c.name) ? "  (held out)" : ""))
        }
        if !held.isEmpty { print(String(format: "held-out classes: %.2f%% choosing among all classes", 100 * result.accuracy(over: held))) }
        if heldIndices.count >= 2 { print(String(format: "held-out classes: %.2f%% choosing among the held-out classes only", 100 * amongHeld)) }
        if !held.isEmpty { print(String(format: "seen classes: %.2f%%", 100 * result.accuracy(over: Set(result.classes.map(\.name)).subtracting(held)))) }
        print(String(format: "recall@1/5/10 over %d pairs: image->text %.3f %.3f %.3f; text->image %.3f %.3f %.3f", result.pairs,
                     result.imageToText[0], result.imageToText[1], result.imageToText[2],
                     result.textToImage[0], result.textToImage[1], result.textToImage[2]))
    }
}

struct CLIPSearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "The pictures in a folder that best match a text, by CLIP similarity.")
    @Option(help: "A CLIP model from attend clip train.") var model = "models/clip.safetensors"
    @Option(help: "Folder of pictures (PNG or JPEG, searched recursively).") var images: String
    @Option(help: "Pictures to print.") var top = 5
    @Argument(help: "What to look for.") var query: String
    @OptionGroup var towers: CLIPTowerOptions

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1, got \(top)") }
        guard !query.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("give a non-empty query") }
    }

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: images, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw AttendError("\(images): not a folder")
        }
        let files = (FileManager.default.enumerator(atPath: images)?.allObjects as? [String] ?? [])
            .filter { ImageFolder.extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            .map { (images as NSString).appendingPathComponent($0) }
        guard !files.isEmpty else { throw AttendError("\(images): no .png, .jpg or .jpeg picture") }
        let clip = try towers.load(model)
        var readable: [String] = []
        for path in files {
            do { _ = try readPicture(path); readable.append(path) } catch {
                FileHandle.standardError.write(Data("skipped: \(error)\n".utf8))
            }
        }
        guard !readable.isEmpty else { throw AttendError("\(images): no picture could be read") }
        var identity = "search"
        for p in readable {
            let a = try? FileManager.default.attributesOfItem(atPath: p)
            identity += "|\(p):\((a?[.size] as? NSNumber)?.intValue ?? -1):\((a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        }
        let set = CaptionedImages(identity: identity, image: { try Image.read(readable[$0]) }, captions: readable.map { _ in [""] })
        let features = try clip.imageFeatures(of: set, cache: towers.featureCache, showProgress: true)
        let similarity = withNoGrad { clip.embedImageRows(features).matmul(clip.embedTexts([query]).transposed(0, 1)) }.toArray()
        for i in readable.indices.sorted(by: { similarity[$0] > similarity[$1] }).prefix(top) {
            print(String(format: "%.4f  %@", similarity[i], readable[i]))
        }
    }
}

struct CLIPMatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "The similarity matrix of pictures and captions as a labelled heatmap (PNG), and printed.")
    @Option(help: "A CLIP model from attend clip train.") var model = "models/clip.safetensors"
    @Option(help: "Captions, separated by '|'.") var captions: String
    @Option(name: .shortAndLong, help: "Where to write the heatmap (.png).") var output: String
    @Argument(help: "Pictures (PNG or JPEG).") var images: [String]
    @OptionGroup var towers: CLIPTowerOptions

    var captionList: [String] { captions.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give one or more pictures") }
        guard !captionList.contains(where: \.isEmpty) else { throw ValidationError("--captions: an empty caption in '\(captions)'") }
        guard output.lowercased().hasSuffix(".png") else { throw ValidationError("--output must end in .png") }
    }

    func run() throws {
        try OutputPath.check(output, isNotInput: images + [model])
        let clip = try towers.load(model)
        let pictures = try images.map(readPicture)
        let similarity = withNoGrad { clip.embedImages(pictures).matmul(clip.embedTexts(captionList).transposed(0, 1)) }
        let values = similarity.toArray(), c = captionList.count
        for (r, path) in images.enumerated() {
            print((path as NSString).lastPathComponent + ": " + (0..<c).map { String(format: "%.3f", values[r * c + $0]) }.joined(separator: " "))
        }
        // Cosines sit in a narrow band; the heatmap shows each one above the matrix's smallest.
        let low = values.min() ?? 0
        let shifted = Tensor(values.map { $0 - low }, shape: similarity.shape)
        try Heatmap.render(shifted, cell: 24, rowLabels: images.map { ($0 as NSString).lastPathComponent }, columnLabels: captionList,
                           title: "cosine similarity (minimum \(String(format: "%.2f", low)) is white)", maxLabel: 28).writePNG(to: output)
        print("wrote \(output)")
    }
}
