"""Settings of the embedded store's engine (chDB): the `embedded_store.*` group."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddedStoreSettings(Strict):
    """Server-level memory of the embedded store (chDB): cache sizes and the engine's limit,
    passed as startup options when the engine starts in a process (its first open). Defaults
    fit a 2-4 GB host (chDB's own defaults are 5 GiB per index cache and 90% of RAM). Not used
    for a ClickHouse server: size its caches in its config."""

    mark_cache_mb: int = Field(128, ge=0, description="marks of the parts read (mark_cache_size)")
    primary_index_cache_mb: int = Field(64, ge=0, description="primary_index_cache_size")
    index_mark_cache_mb: int = Field(32, ge=0, description="skip-index marks")
    uncompressed_cache_mb: int = Field(0, ge=0, description="uncompressed blocks (0: off)")
    compiled_expression_cache_mb: int = Field(32, ge=0)
    query_condition_cache_mb: int = Field(16, ge=0)
    metadata_cache_mb: int = Field(
        16, ge=0, description="each of the Parquet, Iceberg and Paimon metadata caches")
    index_cache_mb: int = Field(
        16, ge=0, description="each of the vector, text and unique-key index caches")
    max_memory_mb: int = Field(
        1536, ge=256, description="max_server_memory_usage: the engine's whole budget; a query "
        "beyond it fails with MEMORY_LIMIT_EXCEEDED (retried by the sink)")
    merges_memory_mb: int = Field(
        512, ge=64, description="merges_mutations_memory_usage_soft_limit")

    jemalloc_conf: str = Field(
        "dirty_decay_ms:1000,muzzy_decay_ms:0", description="the engine's jemalloc options "
        "(JE_MALLOC_CONF, set before chDB loads; the environment's value wins; '': chDB's "
        "built-in dirty_decay_ms:5000): freed pages go back to the system within ~1 s "
        "instead of ~5 s, so the engine's resident memory stays near what it allocates")

    def chdb_options(self) -> dict[str, int]:
        """The startup options (ClickHouse server settings, bytes)."""
        mb = 1024 * 1024
        meta, index = self.metadata_cache_mb * mb, self.index_cache_mb * mb
        return {
            "mark_cache_size": self.mark_cache_mb * mb,
            "primary_index_cache_size": self.primary_index_cache_mb * mb,
            "index_mark_cache_size": self.index_mark_cache_mb * mb,
            "uncompressed_cache_size": self.uncompressed_cache_mb * mb,
            "index_uncompressed_cache_size": self.uncompressed_cache_mb * mb,
            "compiled_expression_cache_size": self.compiled_expression_cache_mb * mb,
            "query_condition_cache_size": self.query_condition_cache_mb * mb,
            "parquet_metadata_cache_size": meta,
            "iceberg_metadata_files_cache_size": meta,
            "paimon_metadata_files_cache_size": meta,
            "vector_similarity_index_cache_size": index,
            "text_index_tokens_cache_size": index,
            "text_index_header_cache_size": index,
            "text_index_postings_cache_size": index,
            "unique_key_index_cache_size_bytes": index,
            "max_server_memory_usage": self.max_memory_mb * mb,
            "merges_mutations_memory_usage_soft_limit": self.merges_memory_mb * mb,
        }
