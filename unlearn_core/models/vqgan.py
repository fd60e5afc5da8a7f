"""VQ-GAN family (MAGE-style): a frozen VQGAN tokenizer and a masked-token transformer.

References:
- Esser et al., "Taming Transformers for High-Resolution Image Synthesis" (CVPR 2021): the VQGAN
  tokenizer, here a `diffusers` VQModel.
- Li et al., "MAGE: MAsked Generative Encoder to Unify Representation Learning and Image
  Synthesis" (CVPR 2023): token embeddings plus a position table, a ViT encoder over the kept
  tokens (masked ones are dropped), a lighter decoder that predicts the hidden tokens.
- Chang et al., "MaskGIT: Masked Generative Image Transformer" (CVPR 2022): iterative decoding
  with a cosine schedule and confidence-based re-masking.
- Li et al., ICLR 2024 (jpmorganchase/i2i_mage): unlearning trains the token transformer's
  encoder (token embedding, position table, blocks, final norm); the latent its losses compare
  is the encoder's output over the tokens it kept, class token first.

Rules of this implementation:
- A pixel mask maps to tokens by cells: the tokenizer turns each `cell` x `cell` square of pixels
  (cell = image_size / grid) into one token, and a token is hidden when at least half of its
  cell's pixels are masked. The presets on a 32x32 image with 8x8 tokens are cell-aligned.
- The tokenizer sees only what is visible: hidden cells are set to 0 before it encodes the image,
  so no token carries hidden content (MAGE tokenizes the whole image; for inpainting that would
  leak the hidden region into the tokens around it).
- The encoder drops every hidden token (MAGE also keeps some masked ones as [MASK] inputs); the
  decoder puts a learned [MASK] embedding at the hidden positions. Because visible tokens come
  from the blanked image, the decoder also learns to correct them (what the whole image's token
  there would be), and generation decodes the corrected ones next to the generated ones. Its output head is its own
  (MAGE ties it to the encoder's token table), so the decoder stays frozen while the encoder
  unlearns.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from unlearn_core.errors import UserInputError
from unlearn_core.models.base import META_FILE, Generation, I2IModel, Inversion, attention, check_size, composite, load_state_strict
from unlearn_core.models.registry import Defaults, Family, Guide, Measured, imported_when_called

CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.safetensors", "tokenizer"
VISIBLE_WEIGHT = 0.5  # weight of the visible-token correction in the training loss


@torch.no_grad()
def nearest_codes(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(N, D) latents -> (N,) index of each one's nearest codebook entry, in float32 and from the
    differences themselves. The matrix-product route (|z|^2 + |e|^2 - 2 z.e, what `cdist` and
    diffusers' quantizer take for many rows) rounded differently from one call to the next on a
    CPU, as the GEMM behind it does, so two codes at almost the same distance swapped between runs,
    and MaskGIT's decoding turned one swapped token into a different picture: the same evaluation
    read differently from one process to another (docs/findings/vqgan.md, 'Tokens from the
    differences themselves')."""
    return torch.cdist(z.float(), codebook.float(), compute_mode="donot_use_mm_for_euclid_dist").argmin(1)


@dataclass(frozen=True)
class TokenizerConfig:
    """A diffusers VQModel: 32x32 grayscale -> 8x8 tokens (two downsamplings) from 256 codes."""

    image_size: int = 32
    channels: int = 1
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    latent_channels: int = 32
    vq_embed_dim: int = 16
    num_vq_embeddings: int = 256
    norm_num_groups: int = 8

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** (len(self.block_out_channels) - 1)

    def build(self):
        from diffusers import VQModel

        n = len(self.block_out_channels)
        return VQModel(
            in_channels=self.channels,
            out_channels=self.channels,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=self.block_out_channels,
            layers_per_block=self.layers_per_block,
            latent_channels=self.latent_channels,
            vq_embed_dim=self.vq_embed_dim,
            num_vq_embeddings=self.num_vq_embeddings,
            norm_num_groups=self.norm_num_groups,
            sample_size=self.image_size,
        )


@dataclass(frozen=True)
class TransformerConfig:
    codebook_size: int = 256
    grid: int = 8
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    mlp_size: int = 512
    decoder_hidden_size: int = 128
    decoder_layers: int = 3
    decoder_heads: int = 4
    decoder_mlp_size: int = 512
    dropout: float = 0.1


@dataclass(frozen=True)
class SamplingConfig:
    """MaskGIT decoding: `iterations` rounds; tokens drawn at `temperature` (0 = most likely);
    which stay hidden is chosen by confidence plus Gumbel noise of weight `choice_temperature`,
    annealed to 0 (MAGE's default 4.5)."""

    iterations: int = 8
    temperature: float = 0.5
    choice_temperature: float = 4.5


@dataclass(frozen=True)
class VQGANConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    @property
    def image_size(self) -> int:
        return self.tokenizer.image_size

    @property
    def channels(self) -> int:
        return self.tokenizer.channels

    def with_size(self, image_size: int, channels: int) -> VQGANConfig:
        """This architecture for other images: the token grid grows with the image (8x8 tokens at
        32 px, 16x16 at 64 px)."""
        downsampling = 2 ** (len(self.tokenizer.block_out_channels) - 1)
        check_size(image_size, channels, downsampling)
        tokenizer = replace(self.tokenizer, image_size=image_size, channels=channels)
        return replace(self, tokenizer=tokenizer, transformer=replace(self.transformer, grid=tokenizer.grid))

    @classmethod
    def from_dict(cls, d: dict) -> VQGANConfig:
        tok = {k: tuple(v) if isinstance(v, list) else v for k, v in d["tokenizer"].items()}
        return cls(TokenizerConfig(**tok), TransformerConfig(**d["transformer"]), SamplingConfig(**d["sampling"]))


PRESETS = {
    "animals": VQGANConfig(),
    "tiny": VQGANConfig(
        TokenizerConfig(block_out_channels=(8, 16, 16), latent_channels=8, vq_embed_dim=4, num_vq_embeddings=32, norm_num_groups=4),
        TransformerConfig(
            codebook_size=32,
            hidden_size=32,
            layers=1,
            heads=2,
            mlp_size=64,
            decoder_hidden_size=32,
            decoder_layers=1,
            decoder_heads=2,
            decoder_mlp_size=64,
        ),
        SamplingConfig(iterations=4),
    ),
}


class Block(nn.Module):
    """Pre-norm transformer block; `keep` (B, S) bool marks the keys that may be attended to."""

    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, h, S, d/h)
        mask = None if keep is None else keep[:, None, None, :]
        y = attention(q, k, v, mask).transpose(1, 2).reshape(b, s, d)
        x = x + self.proj(y)
        return x + self.mlp(self.norm2(x))


class TokenTransformer(nn.Module):
    """MAGE-style encoder/decoder over L = grid^2 tokens plus a class token at position 0."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        d, dd, n = cfg.hidden_size, cfg.decoder_hidden_size, cfg.grid**2 + 1
        self.token_emb = nn.Embedding(cfg.codebook_size + 1, d)  # the codes, then the class token
        self.pos_emb = nn.Parameter(torch.randn(1, n, d) * 0.02)
        self.emb_norm, self.emb_drop = nn.LayerNorm(d, eps=1e-6), nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_size) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dd) * 0.02)
        self.decoder_pos = nn.Parameter(torch.randn(1, n, dd) * 0.02)
        self.decoder_blocks = nn.ModuleList(Block(dd, cfg.decoder_heads, cfg.decoder_mlp_size) for _ in range(cfg.decoder_layers))
        self.decoder_norm = nn.LayerNorm(dd, eps=1e-6)
        self.head = nn.Linear(dd, cfg.codebook_size)

    def encoder_modules(self) -> list[nn.Module]:
        return [self.token_emb, self.emb_norm, self.blocks, self.norm]

    def forward_encoder(self, tokens: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens (B, L) codes, hidden (B, L) bool -> (latent (B, S, D), positions (B, S), valid (B, S)).

        The latent holds the class token then the visible tokens in raster order; images with
        fewer visible tokens than the longest are padded with zero rows (`valid` False), which
        attend but are never attended to."""
        b, L = tokens.shape
        ids = torch.cat([tokens.new_full((b, 1), self.cfg.codebook_size), tokens], dim=1)  # (B, 1 + L)
        x = self.emb_drop(self.emb_norm(self.token_emb(ids) + self.pos_emb))
        keep = torch.cat([hidden.new_ones(b, 1), ~hidden], dim=1)
        counts = keep.sum(1)
        s = int(counts.max())
        positions = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :s]  # kept first
        valid = torch.arange(s, device=x.device)[None] < counts[:, None]
        x = torch.gather(x, 1, positions[..., None].expand(-1, -1, x.shape[-1]))
        keys = None if bool(valid.all()) else valid  # no padding: the fast attention path
        for blk in self.blocks:
            x = blk(x, keys)
        return self.norm(x) * valid[..., None], positions, valid

    def forward_decoder(self, latent: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """-> logits (B, L, codebook_size) for every token position."""
        b, n = latent.shape[0], self.decoder_pos.shape[1]
        h = self.decoder_embed(latent).to(self.mask_token.dtype)  # float32 also under autocast
        x = self.mask_token.expand(b, n, -1).scatter(1, positions[..., None].expand(-1, -1, h.shape[-1]), h)
        # padding rows were scattered onto hidden positions: put [MASK] back there
        kept = torch.zeros(b, n, dtype=torch.bool, device=x.device).scatter(1, positions, valid)
        x = torch.where(kept[..., None], x, self.mask_token) + self.decoder_pos
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.head(self.decoder_norm(x))[:, 1:]

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.forward_decoder(*self.forward_encoder(tokens, hidden))


class VQGANModel(I2IModel):
    """Tokenizer (frozen) + token transformer; images in [0, 1], the tokenizer works in [-1, 1]."""

    family = "vqgan"
    seed_free_encode = True  # tokenizing and the encoder draw nothing at random

    def __init__(self, tokenizer: nn.Module, transformer: TokenTransformer, cfg: VQGANConfig):
        super().__init__()
        self.tokenizer, self.transformer, self.cfg = tokenizer, transformer, cfg
        self.image_size, self.channels = cfg.tokenizer.image_size, cfg.tokenizer.channels
        self.grid = cfg.tokenizer.grid
        self.cell = self.image_size // self.grid
        if transformer.cfg.grid != self.grid or transformer.cfg.codebook_size != cfg.tokenizer.num_vq_embeddings:
            raise UserInputError("the token transformer does not fit the tokenizer (grid or codebook size differ)")

    @classmethod
    def from_config(cls, cfg: VQGANConfig, seed: int = 0) -> VQGANModel:
        torch.manual_seed(seed)
        return cls(cfg.tokenizer.build(), TokenTransformer(cfg.transformer), cfg)

    # ------------------------------------------------------------------ tokens and masks

    def token_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) pixel mask -> (B, L) bool, True = token hidden (half its cell or more)."""
        return F.avg_pool2d(mask, self.cell).flatten(1) >= 0.5

    def pixel_mask(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, L) bool -> (B, 1, H, W) float: the cells the model generates."""
        m = hidden.float().view(-1, 1, self.grid, self.grid)
        return m.repeat_interleave(self.cell, 2).repeat_interleave(self.cell, 3)

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise UserInputError(f"this VQ-GAN takes {self.channels}x{self.image_size}x{self.image_size} images, got {tuple(x.shape[1:])}")

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, L) codes; hidden cells are blanked first (see the rules)."""
        self._check(x)
        if hidden is not None:
            x = x * (1 - self.pixel_mask(hidden))
        h = self.tokenizer.encode(x * 2 - 1).latents  # (B, D, h, w)
        flat = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
        return nearest_codes(flat, self.tokenizer.quantize.embedding.weight).view(len(x), -1)

    @torch.no_grad()
    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) codes -> (B, C, H, W) images in [0, 1]."""
        b, dim = len(tokens), self.cfg.tokenizer.vq_embed_dim
        quant = self.tokenizer.quantize.get_codebook_entry(tokens.flatten(), (b, self.grid, self.grid, dim))
        return ((self.tokenizer.decode(quant, force_not_quantize=True).sample + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ the interface

    def encode(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        """E_theta(T(x)): the transformer encoder's output over the kept tokens, (B, 1 + L_vis, D)."""
        hidden = self.token_mask(mask)
        return self.transformer.forward_encoder(self.tokenize(x, hidden), hidden)[0]

    def encode_pair(
        self, a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], *, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode` of two (images, masks) pairs with one tokenizer call over both (the tokenizer is
        frozen and works image by image, and one call over both costs less than two calls;
        docs/BENCHMARKS.md, 'What changed this session, and what it bought'), then one transformer
        pass where every image keeps as many tokens, else one per pair (padding would give the
        latents another shape)."""
        (xa, ma), (xb, mb) = a, b
        n, hidden = len(xa), self.token_mask(torch.cat([ma, mb]))
        tokens = self.tokenize(torch.cat([xa, xb]), hidden)
        counts = hidden.sum(1)
        if bool((counts == counts[0]).all()):
            e = self.transformer.forward_encoder(tokens, hidden)[0]
            return e[:n], e[n:]
        encoder = self.transformer.forward_encoder
        return encoder(tokens[:n], hidden[:n])[0], encoder(tokens[n:], hidden[n:])[0]

    @property
    def sampling_steps(self) -> int:
        return self.cfg.sampling.iterations

    @property
    def max_sampling_steps(self) -> int:
        return self.grid**2

    @torch.no_grad()
    def generate(
        self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0, steps: int | None = None, sampling: SamplingConfig | None = None
    ) -> Generation:
        """MaskGIT decoding of the hidden tokens in `steps` rounds (default: the config's
        iterations), then the tokenizer's decoder; seeded."""
        s = sampling or self.cfg.sampling
        if steps is not None:
            if not 1 <= steps <= self.max_sampling_steps:
                raise UserInputError(f"sampling steps (MaskGIT rounds) must be between 1 and {self.max_sampling_steps}, got {steps}")
            s = replace(s, iterations=int(steps))
        hidden = self.token_mask(mask)
        tokens = self.maskgit(self.tokenize(x, hidden), hidden, seed, s)
        raw = self.detokenize(tokens).to(x.dtype)  # float32 also under autocast
        m = self.pixel_mask(hidden)
        return Generation(raw=raw, composite=composite(raw, x, m), mask=m)

    def decoder_inversion(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0) -> Inversion:
        """The transformer encoder's latent; the decoder's logits for the hidden tokens, relaxed to
        the softmax-weighted mean of the codebook (so that the image is differentiable in the
        latent), with the visible tokens' own codes, through the tokenizer's decoder."""
        hidden = self.token_mask(mask)
        tokens = self.tokenize(x, hidden)
        with torch.no_grad():
            latent, positions, valid = self.transformer.forward_encoder(tokens, hidden)
        codebook = self.tokenizer.quantize.embedding.weight

        def decode(z: list[torch.Tensor]) -> torch.Tensor:
            probs = self.transformer.forward_decoder(z[0], positions, valid).float().softmax(-1)
            codes = torch.where(hidden[..., None], probs @ codebook.float(), codebook[tokens].float())
            quant = codes.view(len(x), self.grid, self.grid, -1).permute(0, 3, 1, 2)
            return ((self.tokenizer.decode(quant, force_not_quantize=True).sample.float() + 1) / 2).clamp(0, 1)

        return Inversion([latent.detach()], decode, self.pixel_mask(hidden))

    def maskgit(self, tokens: torch.Tensor, hidden: torch.Tensor, seed: int, s: SamplingConfig) -> torch.Tensor:
        """Fill the hidden tokens in `s.iterations` rounds: after round t, cos(pi/2 * t/T) of the
        tokens hidden at the start are still hidden (those the model was least sure of); then
        correct the visible ones."""
        g = torch.Generator(device=tokens.device).manual_seed(seed)
        unknown, start = hidden.clone(), hidden.sum(1, keepdim=True)  # (B, L), (B, 1)
        for t in range(1, s.iterations + 1):
            if not unknown.any():
                break
            logits = self.transformer(tokens, unknown).float()  # (B, L, K)
            sample, logp = self._draw(logits, s.temperature, g)
            gumbel = -torch.log(-torch.log(torch.rand(logp.shape, generator=g, device=logp.device).clamp(1e-20, 1)))
            confidence = logp + s.choice_temperature * (1 - t / s.iterations) * gumbel
            confidence = confidence.masked_fill(~unknown, math.inf)
            left = torch.floor(start * math.cos(math.pi / 2 * t / s.iterations)).long()
            left = torch.minimum(left, (unknown.sum(1, keepdim=True) - 1).clamp(min=0))  # progress every round
            rank = confidence.argsort(1).argsort(1)
            still = rank < left
            tokens = torch.where(unknown & ~still, sample, tokens)
            unknown = still
        # Visible tokens were made from the blanked image, so those next to the hole describe an
        # edge that is not there; the model's reading of them with the hole filled replaces them
        # (only the decoder sees these; the composite keeps the visible pixels as they are).
        corrected = self.transformer(tokens, torch.zeros_like(hidden)).argmax(-1)
        return torch.where(hidden, tokens, corrected)

    @staticmethod
    def _draw(logits: torch.Tensor, temperature: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A code per position and its log-probability under the model (not the temperature)."""
        logp = logits.log_softmax(-1)
        if temperature <= 0:
            sample = logp.argmax(-1)
        else:
            # By inverting the cumulative distribution: one uniform number per position, where
            # torch.multinomial draws one per code, much slower on a CPU
            # (docs/BENCHMARKS.md, 'A cheaper sampler, the fused kernel where nothing trains').
            cdf = (logits / temperature).softmax(-1).cumsum(-1)
            u = torch.rand(cdf.shape[:2] + (1,), generator=g, device=cdf.device) * cdf[..., -1:]
            sample = torch.searchsorted(cdf, u, right=True)[..., 0].clamp(max=cdf.shape[-1] - 1)
        return sample, logp.gather(-1, sample[..., None])[..., 0]

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(seed))
        return self.token_loss(x, self.token_mask(mask), g, target)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The token transformer (the tokenizer stays frozen, as in MAGE)."""
        return list(self.transformer.parameters())

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [self.transformer.pos_emb] + [p for m in self.transformer.encoder_modules() for p in m.parameters()]

    def token_loss(
        self, x: torch.Tensor, hidden: torch.Tensor, generator: torch.Generator | None = None, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Masked-token training loss, shaped like MaskGIT's rounds: of the hidden tokens a random
        share (uniform per image) is revealed with the whole image's tokens (as generated tokens
        are in later rounds), the rest stay hidden. Cross-entropy (label smoothing 0.1) against
        the whole image's tokens at the still-hidden positions, plus VISIBLE_WEIGHT times at the
        visible ones, where the model learns to correct tokens made from the blanked image (see
        `maskgit`). `target`: the images whose tokens are the labels (default: `x` itself)."""
        target = self.tokenize(x if target is None else target)  # (B, L)
        tokens = self.tokenize(x, hidden)
        share = torch.rand(len(x), 1, generator=generator).to(x.device)
        reveal = hidden & (torch.rand(hidden.shape, generator=generator).to(x.device) < share)
        still = hidden & ~reveal
        logits = self.transformer(torch.where(reveal, target, tokens), still)
        loss = F.cross_entropy(logits.transpose(1, 2), target, label_smoothing=0.1, reduction="none")  # (B, L)

        def mean_over(where: torch.Tensor) -> torch.Tensor:
            return (loss * where).sum() / where.sum().clamp(min=1)

        return mean_over(still) + VISIBLE_WEIGHT * mean_over(~hidden)

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """config.json + model.safetensors (the transformer) + tokenizer/ (a diffusers VQModel folder)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(path / TOKENIZER)
        save_file({k: v.contiguous() for k, v in self.transformer.state_dict().items()}, str(path / WEIGHTS))
        (path / CONFIG).write_text(json.dumps({"family": self.family, **asdict(self.cfg)}, indent=2))
        meta = dict(metadata or {}) | {"family": self.family, "image_size": self.image_size, "channels": self.channels}
        (path / META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> VQGANModel:
        from diffusers import VQModel

        path = Path(path)
        for need in (CONFIG, WEIGHTS, f"{TOKENIZER}/config.json"):
            if not (path / need).exists():
                raise UserInputError(f"{path.name}: not a VQ-GAN model folder (no {need})")
        try:
            cfg = VQGANConfig.from_dict(json.loads((path / CONFIG).read_text()))
        except (KeyError, TypeError, ValueError) as e:
            raise UserInputError(f"{path.name}/{CONFIG}: not a VQ-GAN config ({e})") from None
        tokenizer = VQModel.from_config(VQModel.load_config(path / TOKENIZER))
        load_state_strict(tokenizer, load_file(str(path / TOKENIZER / "diffusion_pytorch_model.safetensors")), f"{path.name}/{TOKENIZER}")
        transformer = TokenTransformer(cfg.transformer)
        load_state_strict(transformer, load_file(str(path / WEIGHTS)), path.name)
        return cls(tokenizer.eval(), transformer.eval(), cfg).eval()


FAMILY = Family(
    name="vqgan",
    label="VQ-GAN + token transformer (MAGE)",
    model=VQGANModel,
    presets=PRESETS,
    train=imported_when_called("unlearn_core.models.vqgan_train", "train_vqgan_model"),
    embedded="vqgan-animals",
    references={"cat": "vqgan-animals-nocat"},
    # Random training masks: with the evaluation mask alone, MaskGIT's later rounds (inputs the
    # encoder never saw while unlearning) undo the forgetting or harm the retain set. The paper's
    # method weighs its forget term less here (docs/findings/vqgan.md gives the figures).
    defaults=Defaults(steps=600, lr=5e-4, train_mask="random", alpha={"ours": 0.2}, sampling_steps=SamplingConfig.iterations),
    # the official MAGE code's: base lr 1e-4 scaled by our 64 images a step / 256, alpha 0.2, random
    # masks, its 50 epochs over our forget set's 770 images
    official=Defaults(steps=1200, lr=2.5e-5, train_mask="random", alpha={"ours": 0.2}, sampling_steps=SamplingConfig.iterations),
    guide=Guide(
        forgotten="the generated region breaks into dark, broken strokes and grey blotches instead of a body",
        look_for="about half the cats' fills break up, the others become a plainer body the probe no longer calls a cat "
        "(as the 'never saw cats' column draws one), while the dogs' fills keep their shape; under outpaint50 many cats, "
        "and a few dogs, gain a frame of stray strokes, and the 'what changed' column shows where",
        measured=Measured(
            forget=(0.90, 0.24), retain=(0.81, 0.785), mask="center50", source="docs/findings/fair-science.md", date="2026-12-06"
        ),
    ),
)
