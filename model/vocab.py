"""Vocabulary: token <-> id, built from training lines, serialised to vocab_full.json.

Ids 0 and 1 are reserved: ``<pad>`` = 0, ``<unk>`` = 1.  The token counts of the training
data are kept, because the scorer's calibration needs to know which tokens were rare.
"""
import json
from collections import Counter
from pathlib import Path

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


class Vocabulary:
    def __init__(self, tokens, counts=None):
        self.itos = [PAD, UNK] + [t for t in tokens if t not in (PAD, UNK)]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.counts = dict(counts or {})

    @classmethod
    def build(cls, token_lists, min_freq=1, max_size=None):
        """Most frequent tokens first (ties alphabetically, so builds are deterministic)."""
        counts = Counter(t for tokens in token_lists for t in tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(0, max_size - 2)]
        return cls(kept, {t: counts[t] for t in kept})

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def encode(self, tokens):
        return [self.stoi.get(t, UNK_ID) for t in tokens]

    def decode(self, ids):
        return [self.itos[i] for i in ids]

    def save(self, path):
        payload = {"itos": self.itos, "counts": self.counts}
        Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=0))

    @classmethod
    def load(cls, path):
        path = Path(path)
        try:
            payload = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"vocabulary not found: {path}. Train a model with `clogs train --out "
                                    f"{path.parent}` or point CLOGS_CHECKPOINT_DIR at a checkpoint folder") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"vocabulary {path} is corrupt ({exc}); retrain with `clogs train` or restore the file") from None
        if isinstance(payload, dict) and "itos" in payload:
            itos, counts = payload["itos"], payload.get("counts", {})
        elif isinstance(payload, dict):  # the seed's {token: id} form
            itos, counts = [t for t, _ in sorted(payload.items(), key=lambda kv: kv[1])], {}
        else:
            raise ValueError(f"vocabulary {path} has an unknown layout; expected {{'itos': [...], 'counts': {{...}}}}")
        if itos[:2] != [PAD, UNK]:
            raise ValueError(f"vocabulary {path} must start with {PAD}, {UNK}")
        return cls(itos[2:], counts)
