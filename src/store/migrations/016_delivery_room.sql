-- A delivery row is written three times in its life at most: matched (inserted), woken when the one
-- before it in its stream settles (queued, generation), settled (status). On full pages every rewrite
-- went to another page, with a new entry in each of the table's six indexes; with room left on the
-- page, waking is a HOT update (no index entry: none of its columns is indexed) and a settlement's new
-- version stays on the page it was read from. New pages only: rows already stored stay where they are.
ALTER TABLE delivery SET (fillfactor = 60);
