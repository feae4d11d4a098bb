"""IJB-B / IJB-C template-based 1:1 verification and 1:N identification (insightface's package).

package (reader) -> align (5-point similarity warp) -> features (flip-sum embedding + cache) ->
templates (pooling) -> verify (1:1 ROC, TAR@FAR) | identify (1:N CMC, TPIR@FPIR) -> run."""
