#!/usr/bin/env bash
# The test command: install system packages, then build and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch-assets.sh gensim-test-data all-MiniLM-L6-v2 SmolLM2-135M-Instruct gpt2-tiktoken clip-bpe efficientnet-lite0 imagenet-labels scikit-image-data scikit-learn-data >/dev/null
# A real PostgreSQL + pgvector for the postgres:// store's tests (stopped again at the end if this started it).
if ! scripts/postgres.sh status; then trap 'scripts/postgres.sh stop' EXIT; fi
export ATTEND_TEST_POSTGRES="$(scripts/postgres.sh start)"
# Every claim in the README's Correctness section names a test that exists.
python3 scripts/check-readme-tests.py
# A skipped test is a failure here: every asset a test needs is fetched above, so a skip means something is missing.
mkdir -p .build
swift test 2>&1 | tee .build/swift-test.log
if grep -E "^Test Case .* skipped" .build/swift-test.log; then echo "error: the tests above were skipped" >&2; exit 1; fi
# The kernel tests again with every kernel held to a lower SIMD path (ATTEND_SIMD, CAttendKernels/Dispatch.c): the
# portable C that arm64 and pre-AVX2 machines run, and AVX2, so that each path this CPU has is tested, not only its best.
kernel_tests="TensorOpsTests|GradientCheckTests|ReferenceTests|AttentionKernelTests|LlamaHuggingFaceTests|LlamaTests|VectorIndexTests"
kernel_tests+="|Word2VecTests|GraphTests|VisionLayerTests|EfficientNetTests|ModuleAndCheckpointTests|TrainerTests|BERTTests"
kernel_tests+="|BERTTrainingTests|GPTTests|GPTTrainingTests|LoRATests|CLIPLossTests|CompressionTests"
for level in portable avx2; do
    ATTEND_SIMD=$level swift test --skip-build --filter "$kernel_tests" 2>&1 | tee ".build/swift-test-$level.log"
    if grep -E "^Test Case .* skipped" ".build/swift-test-$level.log"; then echo "error: tests skipped under ATTEND_SIMD=$level" >&2; exit 1; fi
done
# The HTTP server against the official OpenAI Python client (a real client, a real server, real models).
swift build --product attend
scripts/test-server.sh .build/debug/attend
# The picture commands as a user meets them: real answers, and clear errors for bad input.
scripts/test-cli.sh .build/debug/attend
# Every option of every command with 0, -1, nan, inf, huge and empty values: refused by name, never a trap.
python3 scripts/test-cli-options.py .build/debug/attend
# Issue 17's bad inputs (configs, headers, mismatched parts, outputs over inputs, killed runs' files): clear errors.
python3 scripts/test-bad-input.py .build/debug/attend
# Data-parallel training under mpirun: two ranks, bit-identical parameters, the single process's loss curve.
scripts/test-mpi.sh .build/debug/attend
# The README's main job builds attend without the Server, PostgreSQL and MPI traits: that build must compile and answer.
scripts/test-lean.sh .build-lean
