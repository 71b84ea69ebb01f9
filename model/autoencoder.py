"""The LSTM autoencoder: Embedding -> encoder LSTM -> latent -> decoder LSTM -> vocabulary.

The encoder's state at each line's last real token is the line's code, so padding after a
line never changes its code; the decoder reads the latent vector at every step and is causal,
so its output at a real position does not depend on padding either.  ``token_losses``
returns the cross-entropy at every real position (0 at padding), the basis of all scores.
"""
import torch
from torch import nn
from torch.nn import functional as F

from .vocab import PAD_ID


class LSTMAutoencoder(nn.Module):
    def __init__(self, vocab_size, embed_dim=64, hidden_dim=128, latent_dim=32, num_layers=1):
        super().__init__()
        self.hparams = dict(vocab_size=vocab_size, embed_dim=embed_dim, hidden_dim=hidden_dim,
                            latent_dim=latent_dim, num_layers=num_layers)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.encoder = nn.LSTM(embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.to_latent = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.LSTM(latent_dim + embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.output = nn.Linear(hidden_dim, vocab_size)
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
        if projection_dtype is None:
            logits = self.output(real)
        else:
            logits = F.linear(real.to(projection_dtype), self.output.weight.to(projection_dtype),
                              self.output.bias.to(projection_dtype)).to(hidden.dtype)
        losses = torch.zeros(ids.shape, dtype=hidden.dtype, device=ids.device)
        losses[mask] = F.cross_entropy(logits, ids[mask], reduction="none")
        return losses
