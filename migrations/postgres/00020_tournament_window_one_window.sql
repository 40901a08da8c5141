-- +goose Up
-- Whether a window was begun while its tournament was one window (start, end). Such a
-- window is the tournament's one window: a start moved while it runs must not begin a
-- second window beside it, which the closer would pay in full again. A window begun
-- under a schedule is not: a one-window cup that replaces the schedule overlapping it
-- begins its own. false for windows begun before.
ALTER TABLE tournament_windows ADD COLUMN one_window BOOLEAN NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE tournament_windows DROP COLUMN one_window;
