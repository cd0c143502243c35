-- The questions Gladly's Work Sessions tutorial says customers ask, as continuous Flink SQL
-- views over the tables `gladly-kafka sql --dialect flink` declares (docs/flink.md). Each
-- view is a changelog: Flink updates the answer as records arrive, restate or are deleted.
-- Days are UTC days (the job runs with table.local-time-zone = UTC). Durations are seconds.

-- How many contacts were initiated per day: by the day they were queued (inbound) or
-- initiated (outbound), Contact Export's "Queued At".
CREATE VIEW q_contacts_initiated_per_day AS
SELECT CAST(queued_at AS DATE) AS `day`, COUNT(*) AS contacts
FROM contacts
GROUP BY CAST(queued_at AS DATE);

-- How many contacts ended per day (open contacts have no ended_at yet).
CREATE VIEW q_contacts_ended_per_day AS
SELECT CAST(ended_at AS DATE) AS `day`, COUNT(*) AS contacts
FROM contacts
WHERE ended_at IS NOT NULL
GROUP BY CAST(ended_at AS DATE);

-- How many contacts initiated per day were associated with a conversation.
CREATE VIEW q_contacts_with_conversation_per_day AS
SELECT CAST(queued_at AS DATE) AS `day`, COUNT(*) AS contacts
FROM contacts
WHERE conversation_id IS NOT NULL
GROUP BY CAST(queued_at AS DATE);

-- How many OUTBOUND contacts started per day.
CREATE VIEW q_outbound_contacts_started_per_day AS
SELECT CAST(queued_at AS DATE) AS `day`, COUNT(*) AS contacts
FROM contacts
WHERE direction = 'OUTBOUND'
GROUP BY CAST(queued_at AS DATE);

-- Average speed of answer per inbox: the wait of the contacts an agent accepted (Contact
-- Export's "Accepted At", kept in extra), with the inbox's name from the inboxes dimension
-- (NULL when the inbox is no longer listed).
CREATE VIEW q_speed_of_answer_per_inbox AS
SELECT c.inbox_id, i.name AS inbox_name,
       COUNT(*) AS answered, AVG(c.wait_time_sec) AS avg_speed_of_answer_sec
FROM contacts AS c
LEFT JOIN inboxes AS i ON c.inbox_id = i.id
WHERE c.wait_time_sec IS NOT NULL AND COALESCE(c.extra['Accepted At'], '') <> ''
GROUP BY c.inbox_id, i.name;

-- Average handle and hold time per inbox, over the contacts that ended.
CREATE VIEW q_handle_time_per_inbox AS
SELECT c.inbox_id, i.name AS inbox_name, COUNT(*) AS ended,
       AVG(c.handle_time_sec) AS avg_handle_time_sec, AVG(c.hold_time_sec) AS avg_hold_time_sec
FROM contacts AS c
LEFT JOIN inboxes AS i ON c.inbox_id = i.id
WHERE c.ended_at IS NOT NULL
GROUP BY c.inbox_id, i.name;

-- The changelog-sensitive one: how many contacts are open right now, out of all contacts.
-- A contact's provisional row (no ended_at) is replaced under its key by its final row once
-- it ends, so Flink retracts it from the open count: the count falls as contacts end, to
-- zero when none is open.
CREATE VIEW q_open_contacts AS
SELECT SUM(CASE WHEN ended_at IS NULL THEN 1 ELSE 0 END) AS open_contacts,
       COUNT(*) AS contacts
FROM contacts;

-- How many agents worked on each contact: its work sessions with an agent (the agent-less
-- row has agent_id '').
CREATE VIEW q_agents_per_contact AS
SELECT contact_session_id, COUNT(*) AS agents
FROM work_sessions
WHERE agent_id <> ''
GROUP BY contact_session_id;

-- Average handle and after-contact time per inbox, over the work sessions of ended contacts
-- (after-contact time keeps growing after the contact ends: the newest row of each work
-- session replaces the older one, so the average follows).
CREATE VIEW q_work_time_per_inbox AS
SELECT ws.inbox_id, i.name AS inbox_name, COUNT(*) AS work_sessions,
       AVG(ws.work_session_handle_time_sec) AS avg_handle_time_sec,
       AVG(ws.work_session_after_contact_time_sec) AS avg_after_contact_time_sec
FROM work_sessions AS ws
LEFT JOIN inboxes AS i ON ws.inbox_id = i.id
WHERE ws.contact_session_ended_at IS NOT NULL AND ws.agent_id <> ''
GROUP BY ws.inbox_id, i.name;

-- The changelog-sensitive one over work sessions: how many are open (provisional: no id
-- until the contact ends) right now, out of all. Each provisional row is replaced under its
-- key by the final one, or deleted by a tombstone (the agent-less row of a contact an agent
-- then accepted), so the count falls to zero once no contact is open.
CREATE VIEW q_open_work_sessions AS
SELECT SUM(CASE WHEN id IS NULL THEN 1 ELSE 0 END) AS open_work_sessions,
       COUNT(*) AS work_sessions
FROM work_sessions;
