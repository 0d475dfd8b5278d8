-- Labels belong to a model (by name, any version): ground truth for prediction `x` of one model
-- is not another model's, and a key labels only the models in its scope. A label from before
-- takes the model of the oldest stored prediction with its id (the one it counted for); one with
-- no stored prediction is kept under model '', which no prediction has.
ALTER TABLE labels ADD COLUMN model TEXT NOT NULL DEFAULT '';
UPDATE labels l SET model = coalesce((SELECT m.name FROM predictions p JOIN models m ON m.id = p.model_id
                                      WHERE p.prediction_id = l.prediction_id ORDER BY p.seq LIMIT 1), '');
ALTER TABLE labels ALTER COLUMN model DROP DEFAULT;
ALTER TABLE labels DROP CONSTRAINT labels_pkey;
ALTER TABLE labels ADD PRIMARY KEY (model, prediction_id);
