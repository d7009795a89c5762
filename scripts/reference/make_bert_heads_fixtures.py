"""A tiny random BERT with its masked-LM and sequence-classification heads in the Hugging Face layout, and
the logits transformers' BertForMaskedLM / BertForSequenceClassification (an independent implementation)
give for a padded batch of text pairs with segment ids. Tolerance: 1e-4 absolute.

    .cache/venv/bin/python scripts/reference/make_bert_heads_fixtures.py Tests/AttendModelsTests/Fixtures
"""
import json
import sys

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification


def main(out):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                        max_position_embeddings=20, type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        num_labels=3)
    mlm = BertForMaskedLM(config).eval()
    classifier = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for p in list(mlm.parameters()) + list(classifier.parameters()):
            p.add_(0.05 * torch.randn_like(p))
        # One encoder for both heads, as after pretraining.
        classifier.bert.embeddings.load_state_dict(mlm.bert.embeddings.state_dict())
        classifier.bert.encoder.load_state_dict(mlm.bert.encoder.state_dict())
    tensors = {k: v.clone().contiguous() for k, v in mlm.state_dict().items() if "position_ids" not in k}
    for k, v in classifier.state_dict().items():
        if k.startswith("bert.pooler") or k.startswith("classifier"):
            tensors[k] = v.contiguous()
    save_file(tensors, f"{out}/tiny_bert_heads.safetensors")
    # [CLS]=1 a [SEP]=2 b [SEP], padded with 0.
    ids = [[1, 7, 8, 9, 2, 10, 11, 2], [1, 12, 2, 13, 14, 15, 2, 0]]
    types = [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 0]]
    mask = [[1] * 8, [1] * 7 + [0]]
    with torch.no_grad():
        args = dict(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types), attention_mask=torch.tensor(mask))
        mlm_logits = mlm(**args).logits
        class_logits = classifier(**args).logits
    json.dump({"ids": ids, "types": types, "lengths": [8, 7], "mlm_logits": mlm_logits.reshape(-1).tolist(),
               "class_logits": class_logits.reshape(-1).tolist()}, open(f"{out}/tiny_bert_heads_expected.json", "w"))


if __name__ == "__main__":
    main(sys.argv[1])
