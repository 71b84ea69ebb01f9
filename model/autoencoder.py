"""The LSTM autoencoder: Embedding -> encoder LSTM -> latent -> decoder LSTM -> vocabulary.

The encoder's state at each line's last real token is the line's code, so padding after a
line never changes its code; the decoder reads the latent vector at every step and is causal,
so its output at a real position does not depend on padding either.  ``token_losses``
returns the cross-entropy at every real position (0 at padding), the basis of all scores.

The output over the vocabulary is either one softmax (``output_classes=0``, the shipped model)
or class-factored (``output_classes=C``): P(token | h) = P(class | h) * P(token | its class, h),
the vocabulary cut in C classes of equal size in frequency order.  A token's loss then needs
C + |V|/C logits instead of |V| -- about 17x fewer for C = 32 and |V| = 1,178 -- which is most
of the model's arithmetic at scoring time (docs/figures.md, issue 11).
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from .vocab import PAD_ID


class LSTMAutoencoder(nn.Module):
    def __init__(self, vocab_size, embed_dim=64, hidden_dim=128, latent_dim=32, num_layers=1, output_classes=0):
        super().__init__()
        self.hparams = dict(vocab_size=vocab_size, embed_dim=embed_dim, hidden_dim=hidden_dim,
                            latent_dim=latent_dim, num_layers=num_layers)
        if output_classes:   # only then, so a full-softmax model's hparams stay as they always were
            self.hparams["output_classes"] = output_classes
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.encoder = nn.LSTM(embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.to_latent = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.LSTM(latent_dim + embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.output = (ClassFactoredOutput(hidden_dim, vocab_size, output_classes) if output_classes
                       else nn.Linear(hidden_dim, vocab_size))
        # the decoder sees the latent code plus a learned position embedding at every step,
        # never the input tokens themselves (no teacher forcing: it must reconstruct)
        self.position = nn.Embedding(512, embed_dim)

    def encode(self, ids, lengths):
        out, _ = self.encoder(self.embedding(ids))
        last = out[torch.arange(ids.size(0), device=ids.device), (lengths - 1).clamp(min=0)]
        return torch.tanh(self.to_latent(last))

    def forward(self, ids, lengths):
        """Logits of shape (batch, seq, vocab)."""
        latent = self.encode(ids, lengths)
        seq = ids.size(1)
        pos = self.position(torch.arange(seq, device=ids.device).clamp(max=511)).unsqueeze(0)
        dec_in = torch.cat([latent.unsqueeze(1).expand(-1, seq, -1), pos.expand(ids.size(0), -1, -1)], dim=-1)
        out, _ = self.decoder(dec_in)
        return out

    def token_losses(self, ids, lengths, projection_dtype=None):
        """Cross-entropy of each real token, shape (batch, seq); logits only at real positions.
        ``projection_dtype`` (e.g. torch.bfloat16): the output projection -- most of the arithmetic --
        in that type, the cross-entropy still in the model's own (model.scoring, precision "bf16")."""
        hidden = self.forward(ids, lengths)
        mask = ids != PAD_ID
        real = hidden[mask]
        losses = torch.zeros(ids.shape, dtype=hidden.dtype, device=ids.device)
        if isinstance(self.output, ClassFactoredOutput):
            losses[mask] = self.output.losses(real, ids[mask], projection_dtype)
        else:
            losses[mask] = blocked_cross_entropy(real, ids[mask], self.output, projection_dtype)
        return losses


# Positions per block of the one-softmax output: a block's logits (256 x |V| floats, about 1.2 MB for
# the shipped 1,178 tokens) stay in the CPU's cache between the projection and the cross-entropy.
# All positions at once wrote and read back tens of MB and ran 2-4x slower; each row's loss is the same
# either way (a row's logits and softmax do not depend on the other rows).
OUTPUT_BLOCK = 256


def blocked_cross_entropy(hidden, targets, layer, dtype=None, block=OUTPUT_BLOCK):
    """Cross-entropy of ``targets`` under the softmax of ``layer(hidden)``, ``block`` positions at a time."""
    if hidden.size(0) <= block:
        return F.cross_entropy(project(hidden, layer, dtype), targets, reduction="none")
    return torch.cat([F.cross_entropy(project(hidden[a:a + block], layer, dtype), targets[a:a + block], reduction="none")
                      for a in range(0, hidden.size(0), block)])


def project(hidden, layer, dtype=None):
    """``layer`` (nn.Linear) applied to ``hidden``, in ``dtype`` if given (the result back in
    hidden's own type)."""
    if dtype is None:
        return layer(hidden)
    return F.linear(hidden.to(dtype), layer.weight.to(dtype), layer.bias.to(dtype)).to(hidden.dtype)


class ClassFactoredOutput(nn.Module):
    """-log P(token | h) = -log P(class | h) - log P(token | class, h).

    Token id i (ids are in frequency order, most frequent first) is in class i // size, at slot
    i % size, with size = ceil(|V| / classes): the first class holds the commonest tokens.  Each
    class has its own linear layer for the logits within it, and a position needs only its
    target's class: positions are grouped by class, one small matrix product per class present.
    """

    def __init__(self, hidden_dim, vocab_size, classes):
        super().__init__()
        self.vocab_size = vocab_size
        self.size = math.ceil(vocab_size / classes)
        self.n_classes = math.ceil(vocab_size / self.size)
        self.classes = nn.Linear(hidden_dim, self.n_classes)
        self.words = nn.ModuleList(nn.Linear(hidden_dim, self.width(c)) for c in range(self.n_classes))

    def width(self, c):
        """Tokens in class c (the last one may be short)."""
        return min(self.size, self.vocab_size - c * self.size)

    def losses(self, hidden, targets, dtype=None):
        """Cross-entropy of each target under the factored softmax, shape (positions,)."""
        cls = torch.div(targets, self.size, rounding_mode="floor")
        slot = targets - cls * self.size
        loss = F.cross_entropy(project(hidden, self.classes, dtype), cls, reduction="none")
        order = torch.argsort(cls, stable=True)
        pieces, start = [], 0
        for c, n in enumerate(torch.bincount(cls, minlength=self.n_classes).tolist()):
            if n:
                at = order[start:start + n]
                pieces.append(F.cross_entropy(project(hidden[at], self.words[c], dtype), slot[at], reduction="none"))
                start += n
        within = torch.empty_like(loss)
        within[order] = torch.cat(pieces)
        return loss + within
