-- Labels belong to a model (by name, any version): ground truth for prediction `x` of one model
-- is not another model's, and a key labels only the models in its scope. A label from before
-- takes the model of the oldest stored prediction with its id (the one it counted for); one with
-- no stored prediction is kept under model '', which no prediction has.
CREATE TABLE labels_per_model (
    model         TEXT NOT NULL,
    prediction_id TEXT NOT NULL,
    timestamp_ms  INTEGER NOT NULL,
    truth_class   TEXT,
    truth_value   REAL,
    received_ms   INTEGER NOT NULL,
    PRIMARY KEY (model, prediction_id)
);
INSERT INTO labels_per_model (model, prediction_id, timestamp_ms, truth_class, truth_value, received_ms)
SELECT coalesce((SELECT m.name FROM predictions p JOIN models m ON m.id = p.model_id
                 WHERE p.prediction_id = l.prediction_id ORDER BY p.seq LIMIT 1), ''),
       l.prediction_id, l.timestamp_ms, l.truth_class, l.truth_value, l.received_ms
FROM labels l;
DROP TABLE labels;
ALTER TABLE labels_per_model RENAME TO labels;
