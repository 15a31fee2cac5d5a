"""Kokoro-82M on MLX (hexgrad's `KModel`): token ids and a reference style in, vocoder features out.

`features` runs everything before the vocoder, as hexgrad's `forward_with_tokens` does:
ALBERT -> `bert_encoder` -> DurationEncoder -> durations -> alignment -> F0 and energy; and the
acoustic TextEncoder expanded by the same alignment (`asr`). `self.decoder` (the vocoder,
`kokoro.model.decoder.Decoder`) turns those features into 24 kHz audio. Top-level names are
hexgrad's (`bert`, `bert_encoder`, `predictor`, `text_encoder`, `decoder`), so the canonical state
loads one to one through `load_state`. One utterance at a time: batch 1, no padding.
"""

from __future__ import annotations

from collections.abc import Mapping

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ...errors import KokoroInputError
from ...vocoders import VocoderFeatures
from ..config import KokoroConfig
from .albert import CustomAlbert
from .alignment import durations_from_logits, expand, frame_tokens
from .decoder import Decoder
from .prosody import ProsodyPredictor
from .state import load_canonical_state, parameter_shapes
from .text_encoder import TextEncoder


class KokoroModel(nn.Module):
    def __init__(self, config: KokoroConfig, with_decoder: bool = True) -> None:
        super().__init__()
        self.config = config
        self.bert = CustomAlbert(config.plbert, config.n_token)
        self.bert_encoder = nn.Linear(config.plbert.hidden_size, config.hidden_dim)
        self.predictor = ProsodyPredictor(
            style_dim=config.style_dim, d_hid=config.hidden_dim, nlayers=config.n_layer, max_dur=config.max_dur
        )
        self.text_encoder = TextEncoder(
            channels=config.hidden_dim,
            kernel_size=config.text_encoder_kernel_size,
            depth=config.n_layer,
            n_symbols=config.n_token,
        )
        if with_decoder:  # without it: the text side alone (tests, feature extraction)
            self.decoder = Decoder.from_config(config)

    def state_keys(self) -> list[str]:
        """Every canonical key `load_state` requires, sorted."""
        return sorted(parameter_shapes(self))

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load a canonical state (hexgrad names, PyTorch layouts, float32); strict: raises
        KokoroStateMismatch naming every missing, unexpected and misshapen key."""
        load_canonical_state(self, state)

    def _check_inputs(self, token_ids: mx.array, ref_style: mx.array, speed: float) -> None:
        longest = self.config.plbert.max_position_embeddings
        if token_ids.ndim != 2 or token_ids.shape[0] != 1 or not 3 <= token_ids.shape[1] <= longest:
            raise KokoroInputError("token_ids", f"(1, T) with 3 <= T <= {longest}", str(tuple(token_ids.shape)))
        ids = np.asarray(token_ids)
        if ids.min() < 0 or ids.max() >= self.config.n_token:
            raise KokoroInputError("token_ids", f"ids in [0, {self.config.n_token})", f"[{ids.min()}, {ids.max()}]")
        if tuple(ref_style.shape) != (1, 2 * self.config.style_dim):
            raise KokoroInputError("ref_style", f"(1, {2 * self.config.style_dim})", str(tuple(ref_style.shape)))
        if not speed > 0:
            raise KokoroInputError("speed", "a positive number", repr(speed))

    def _durations(self, token_ids: mx.array, ref_style: mx.array, speed: float) -> tuple[mx.array, mx.array]:
        """The DurationEncoder's output `(1, T, hidden_dim + style_dim)` and the `(T,)` int32 durations."""
        self._check_inputs(token_ids, ref_style, speed)
        prosody_style = ref_style.astype(mx.float32)[:, self.config.style_dim :]
        d_en = self.bert_encoder(self.bert(token_ids.astype(mx.int32)))  # (1, T, hidden_dim)
        d = self.predictor.text_encoder(d_en, prosody_style)
        return d, durations_from_logits(self.predictor.duration_logits(d), speed)

    def durations(self, token_ids: mx.array, ref_style: mx.array, speed: float = 1.0) -> mx.array:
        """Frames per token, `(T,)` int32 (hexgrad's `pred_dur`), without computing the features."""
        return self._durations(token_ids, ref_style, speed)[1]

    def features(
        self, token_ids: mx.array, ref_style: mx.array, speed: float = 1.0, *, durations: mx.array | None = None
    ) -> tuple[VocoderFeatures, mx.array]:
        """`(1, T)` ids (with the 0 pad at both ends), `(1, 256)` style -> vocoder features, `(T,)` int32 durations.

        The first `style_dim` style values condition the decoder, the rest the prosody. F frames in
        all (the sum of the durations): asr `(1, hidden_dim, F)`, f0 and energy `(1, 2F)`.
        `durations` (T,), when given, replace the predicted ones (forced timing, or a reference's).
        """
        d, predicted = self._durations(token_ids, ref_style, speed)
        if durations is None:
            durations = predicted
        elif durations.shape != predicted.shape or mx.any(durations < 1).item():
            raise KokoroInputError("durations", f"{predicted.shape} of ints >= 1", str(durations.tolist()))
        durations = durations.astype(mx.int32)
        ref_style = ref_style.astype(mx.float32)
        style, prosody_style = ref_style[:, : self.config.style_dim], ref_style[:, self.config.style_dim :]
        tokens = frame_tokens(durations)  # (F,): evaluates the durations
        f0, energy = self.predictor.predict_f0_n(expand(d, tokens), prosody_style)
        asr = expand(self.text_encoder(token_ids.astype(mx.int32)), tokens)  # (1, F, hidden_dim)
        return VocoderFeatures(asr=asr.transpose(0, 2, 1), f0=f0, energy=energy, style=style), durations
