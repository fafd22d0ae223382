-- Scenes: the GM's prepared moods, each a JSON document (`scene::SceneSpec`), in the GM's order.
CREATE TABLE scenes (
    id       INTEGER PRIMARY KEY,
    position INTEGER NOT NULL,
    spec     TEXT    NOT NULL
) STRICT;
