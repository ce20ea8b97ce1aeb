-- Notes for the second database.
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
