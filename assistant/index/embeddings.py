"""Dense sentence embeddings with sentence-transformers, offline.

Default: a static model built from the chiVe word vectors that the ja-ginza package ships
(no download): Sudachi segments the text, words are looked up by normalised form (compounds
fall back to their parts) and their vectors are mean-pooled, as a sentence-transformers
`StaticEmbedding` does.
Any configured local sentence-transformers directory (e.g. a ruri-v3 or multilingual-e5 copy)
replaces it without code changes.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.index.tokenizer import get_tokenizer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

CHIVE_MODEL_ID = "chive-ja-ginza-5.3.0-static"


class EmbeddingError(RuntimeError):
    """The configured embedding model cannot be loaded."""


def _ginza_vocab_dir() -> Path:
    try:
        import ja_ginza
    except ImportError as exc:
        raise EmbeddingError("ja-ginza パッケージがありません（既定の埋め込みモデルに必要です）") from exc
    candidates = sorted(Path(ja_ginza.__file__).parent.glob("ja_ginza-*/vocab"))
    if not candidates:
        raise EmbeddingError("ja-ginza の語彙ベクトルが見つかりません")
    return candidates[-1]


def build_chive_cache(cache_file: Path) -> None:
    """Extract word → row and the vector table from ja-ginza once, into a compact .npz file."""
    from spacy.strings import StringStore
    from spacy.vectors import Vectors

    vocab_dir = _ginza_vocab_dir()
    vectors = Vectors()
    vectors.from_disk(vocab_dir)
    strings = StringStore().from_disk(vocab_dir / "strings.json")
    key2row = vectors.key2row
    words, rows = [], []
    for word in strings:
        row = key2row.get(strings[word], -1)
        if row >= 0:
            words.append(word)
            rows.append(row)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp.npz")
    np.savez(tmp, words=np.array(words), rows=np.array(rows, dtype=np.int32), vectors=np.asarray(vectors.data, dtype=np.float32))
    tmp.replace(cache_file)


class Embedder:
    """Embeds passages and queries; also usable as a LangChain `Embeddings`."""

    model_id: str
    dimension: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts, is_query=False).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text], is_query=True)[0].tolist()

    def encode(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        raise NotImplementedError


class ChiveEmbedder(Embedder):
    """chiVe mean-pooled word vectors.

    Encoding is the arithmetic of a sentence-transformers `StaticEmbedding` (mean of the word
    rows, then L2 normalisation) done directly with numpy, so answering does not pay the ~5 s
    import of torch and transformers; `to_sentence_transformer()` builds the equivalent
    sentence-transformers model (tests check both give the same vectors).
    """

    def __init__(self, cache_dir: Path) -> None:
        cache_file = cache_dir / f"{CHIVE_MODEL_ID}.npz"
        if not cache_file.is_file():
            build_chive_cache(cache_file)
        data = np.load(cache_file)
        words, rows = data["words"].tolist(), data["rows"] + 1  # row 0 is the zero vector for [UNK]
        self._vocab: dict[str, int] = dict(zip(words, rows.tolist()))
        self._weights = np.vstack([np.zeros((1, data["vectors"].shape[1]), dtype=np.float32), data["vectors"]])
        self.model_id = CHIVE_MODEL_ID
        self.dimension = int(self._weights.shape[1])

    def segment(self, text: str) -> str:
        """Words of the text that have a vector, space separated (compounds fall back to parts)."""
        words = []
        for form, parts in get_tokenizer().morphemes(text):
            if form in self._vocab:
                words.append(form)
            else:
                words.extend(p for p in parts if p in self._vocab)
        return " ".join(words)

    def rows_of(self, morphemes: list[tuple[str, list[str]]]) -> list[int]:
        """Vector rows of analysed text (as `segment`, without tokenising again)."""
        vocab, rows = self._vocab, []
        for form, parts in morphemes:
            row = vocab.get(form)
            if row is not None:
                rows.append(row)
            else:
                rows.extend(vocab[p] for p in parts if p in vocab)
        return rows

    def encode_morphemes(self, analysed: list[list[tuple[str, list[str]]]]) -> np.ndarray:
        """Passage vectors of texts already analysed by the tokenizer (`morphemes`)."""
        return self._pool([self.rows_of(m) for m in analysed])

    def encode(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        return self._pool([[self._vocab[w] for w in self.segment(text).split()] for text in texts])

    def _pool(self, row_lists: list[list[int]]) -> np.ndarray:
        vectors = np.zeros((len(row_lists), self.dimension), dtype=np.float32)
        for i, rows in enumerate(row_lists):
            if rows:
                vectors[i] = self._weights[rows].mean(axis=0)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        vectors[~vectors.any(axis=1), 0] = 1e-6  # keep cosine defined for text without known words
        return vectors

    def to_sentence_transformer(self) -> "SentenceTransformer":
        """The same model as a sentence-transformers `StaticEmbedding` (input: `segment(text)`)."""
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import WhitespaceSplit

        tokenizer = Tokenizer(WordLevel({"[UNK]": 0, **self._vocab}, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = WhitespaceSplit()
        return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=self._weights)], device="cpu")


class LocalSentenceTransformerEmbedder(Embedder):
    def __init__(self, model_dir: Path, query_prefix: str = "", passage_prefix: str = "") -> None:
        from sentence_transformers import SentenceTransformer

        if not model_dir.is_dir():
            raise EmbeddingError(f"埋め込みモデルのフォルダが見つかりません: {model_dir}")
        try:
            self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except Exception as exc:
            raise EmbeddingError(f"埋め込みモデルを読み込めません: {model_dir}（{exc}）") from exc
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self._lock = threading.Lock()
        digest = hashlib.sha1(str(model_dir.resolve()).encode()).hexdigest()[:8]
        self.model_id = f"local-{model_dir.name}-{digest}"
        self.dimension = int(self.model.get_sentence_embedding_dimension() or 0)

    def encode(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        prefix = self.query_prefix if is_query else self.passage_prefix
        # A Hugging Face fast tokenizer refuses a second thread while it encodes ("Already borrowed").
        with self._lock:
            vectors = self.model.encode(
                [prefix + t for t in texts], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return vectors.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _cached_embedder(model: str, cache_dir: str, query_prefix: str, passage_prefix: str) -> Embedder:
    if model == "chive":
        return ChiveEmbedder(Path(cache_dir))
    return LocalSentenceTransformerEmbedder(Path(model).expanduser(), query_prefix, passage_prefix)


def get_embedder(settings) -> Embedder:  # noqa: ANN001 - Settings, imported lazily to avoid a cycle
    return _cached_embedder(settings.embedding_model, str(settings.cache_dir), settings.query_prefix, settings.passage_prefix)
