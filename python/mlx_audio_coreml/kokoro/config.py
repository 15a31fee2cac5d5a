"""Kokoro-82M's dimensions: frozen dataclasses read from hexgrad's config.json.

`KokoroConfig.from_dict(json.load(f))` takes the file as hexgrad ships it; keys the model does
not use (`dim_in`, `max_conv_dim`, `multispeaker`, plbert's `dropout`) are accepted and ignored.
The defaults are Kokoro-82M v1.0's values, so `KokoroConfig()` is that model less its vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from ..errors import KokoroConfigError


@dataclass(frozen=True)
class ISTFTNetConfig:
    """The vocoder's generator (hexgrad's `istftnet` block)."""

    upsample_rates: tuple[int, ...] = (10, 6)  # 60x, times the iSTFT hop 5: 300 samples per F0 frame
    upsample_kernel_sizes: tuple[int, ...] = (20, 12)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    gen_istft_n_fft: int = 20
    gen_istft_hop_size: int = 5


@dataclass(frozen=True)
class PLBertConfig:
    """The ALBERT text encoder (hexgrad's `plbert` block; the rest are AlbertConfig's defaults)."""

    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 2048
    max_position_embeddings: int = 512  # also the longest input: 510 phonemes + 2 pads
    num_hidden_layers: int = 12  # one shared layer applied this many times
    embedding_size: int = 128  # ALBERT's factorized embedding, mapped up to hidden_size
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12


@dataclass(frozen=True)
class KokoroConfig:
    """The whole model; field names are hexgrad's config.json keys."""

    n_token: int = 178  # phoneme vocabulary size (ids 0..177; 0 is the pad)
    hidden_dim: int = 512
    style_dim: int = 128  # each half of a voice's 256-value reference style
    n_layer: int = 3  # DurationEncoder LSTMs and TextEncoder CNN blocks
    n_mels: int = 80
    max_dur: int = 50  # duration bins per token
    dropout: float = 0.2  # training only
    text_encoder_kernel_size: int = 5
    istftnet: ISTFTNetConfig = field(default_factory=ISTFTNetConfig)
    plbert: PLBertConfig = field(default_factory=PLBertConfig)
    vocab: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KokoroConfig:
        """Build from config.json's content; raises KokoroConfigError naming every missing key."""
        required = ("n_token", "hidden_dim", "style_dim", "n_layer", "max_dur", "istftnet", "plbert")
        missing = [k for k in required if k not in d]
        if missing:
            raise KokoroConfigError(missing=missing, detail="config.json lacks required keys")
        top = _pick(cls, d, exclude=("istftnet", "plbert", "vocab"))
        return cls(
            **top,
            istftnet=ISTFTNetConfig(**_tuples(_pick(ISTFTNetConfig, d["istftnet"]))),
            plbert=PLBertConfig(**_pick(PLBertConfig, d["plbert"])),
            vocab=MappingProxyType({str(k): int(v) for k, v in d.get("vocab", {}).items()}),
        )

    def to_dict(self) -> dict[str, Any]:
        """config.json's content (hexgrad's keys), lists where the file has lists."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["istftnet"] = {f.name: _lists(getattr(self.istftnet, f.name)) for f in fields(self.istftnet)}
        out["plbert"] = {f.name: getattr(self.plbert, f.name) for f in fields(self.plbert)}
        out["vocab"] = dict(self.vocab)
        return out


def _pick(cls: type, d: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    names = {f.name for f in fields(cls)} - set(exclude)
    return {k: v for k, v in d.items() if k in names}


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """JSON lists (possibly nested) to tuples, so the frozen config is hashable and immutable."""

    def conv(v: Any) -> Any:
        return tuple(conv(x) for x in v) if isinstance(v, (list, tuple)) else v

    return {k: conv(v) for k, v in d.items()}


def _lists(v: Any) -> Any:
    return [_lists(x) for x in v] if isinstance(v, tuple) else v
