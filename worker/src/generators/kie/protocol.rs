//! Kie.ai's answers: the `code` envelope, task ids, the states of each task API, results.

use boards_shared::generators::run::GenerateError;
use serde_json::Value;

/// The task APIs (the catalogue entry's `api`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `jobs/createTask` with `{model, input}`; `data.state`, results in `data.resultJson`.
    Market,
    /// `veo/generate`; `data.successFlag`, results in `data.response`.
    Veo,
    /// `aleph/generate`; as Veo.
    Aleph,
    /// `generate` (songs); `data.status`, tracks in `data.response.sunoData`.
    Suno,
    /// `generate/sounds`; as Suno, also done on `callbackType: complete`.
    SunoSounds,
}

/// Where a task stands.
#[derive(Debug, PartialEq)]
pub enum State {
    Running,
    Done,
    Failed(String),
}

impl Api {
    /// The entry's `api` (checked when the catalogue loads).
    pub fn of(api: Option<&str>) -> Self {
        match api {
            Some("veo") => Self::Veo,
            Some("aleph") => Self::Aleph,
            Some("suno") => Self::Suno,
            Some("suno-sounds") => Self::SunoSounds,
            _ => Self::Market,
        }
    }

    pub fn submit_path(self) -> &'static str {
        match self {
            Self::Market => "/api/v1/jobs/createTask",
            Self::Veo => "/api/v1/veo/generate",
            Self::Aleph => "/api/v1/aleph/generate",
            Self::Suno => "/api/v1/generate",
            Self::SunoSounds => "/api/v1/generate/sounds",
        }
    }

    pub fn record_path(self) -> &'static str {
        match self {
            Self::Market => "/api/v1/jobs/recordInfo",
            Self::Veo => "/api/v1/veo/record-info",
            Self::Aleph => "/api/v1/aleph/record-info",
            Self::Suno | Self::SunoSounds => "/api/v1/generate/record-info",
        }
    }

    /// The state of a task from its record (`data`).
    pub fn state(self, data: &Value) -> State {
        let text = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
        let why = |keys: &[&str]| {
            keys.iter()
                .map(|k| text(k))
                .find(|m| !m.is_empty())
                .unwrap_or("the task failed")
                .to_string()
        };
        match self {
            Self::Market => match text("state") {
                "success" => State::Done,
                "failed" | "fail" => State::Failed(why(&["failMsg", "errorMsg"])),
                "" | "waiting" | "pending" | "processing" | "queuing" | "generating" => {
                    State::Running
                }
                other => State::Failed(format!("unknown task state `{other}`")),
            },
            Self::Veo | Self::Aleph => match data.get("successFlag").and_then(Value::as_i64) {
                Some(1) => State::Done,
                Some(2 | 3) => State::Failed(why(&["errorMsg", "failMsg"])),
                _ => State::Running,
            },
            Self::Suno | Self::SunoSounds => {
                let status = text("status");
                if status == "SUCCESS"
                    || (self == Self::SunoSounds && text("callbackType") == "complete")
                {
                    State::Done
                } else if status.to_ascii_uppercase().contains("FAIL")
                    // The original kept polling on these until its limit; they are final.
                    || matches!(status, "SENSITIVE_WORD_ERROR" | "CALLBACK_EXCEPTION")
                {
                    let detail = why(&["errorMsg", "failMsg"]);
                    State::Failed(if detail == "the task failed" {
                        status.to_string()
                    } else {
                        detail
                    })
                } else {
                    State::Running
                }
            }
        }
    }

    /// The document the entry's output paths read: the market API's parsed `resultJson` (or
    /// `result`), the task record for the others.
    pub fn result(self, data: &Value) -> Result<Value, GenerateError> {
        match self {
            Self::Market => {
                let parsed = data
                    .get("resultJson")
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .and_then(|s| serde_json::from_str::<Value>(s).ok());
                parsed
                    .or_else(|| data.get("result").filter(|r| !r.is_null()).cloned())
                    .ok_or_else(|| {
                        GenerateError::Permanent("Kie.ai: the task has no result".into())
                    })
            }
            _ => Ok(data.clone()),
        }
    }
}

/// Checks Kie's envelope (`{"code": 200, "msg", "data"}`): another code is the request's
/// fault (4xx, final) or Kie's (retried as a job).
pub fn envelope(answer: Value) -> Result<Value, GenerateError> {
    let Some(code) = answer.get("code").and_then(Value::as_i64) else {
        // Not Kie's envelope (a proxy's page, say): try again later.
        return Err(GenerateError::Transient(
            "Kie.ai: an answer without Kie's code envelope".into(),
        ));
    };
    if code == 200 {
        return Ok(answer);
    }
    let msg = answer
        .get("msg")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown error")
        .to_string();
    // 455: Kie's "service unavailable" (maintenance); 408 and 429 as in HTTP.
    if (400..500).contains(&code) && !matches!(code, 408 | 429 | 455) {
        Err(GenerateError::Permanent(format!("Kie.ai: {msg}")))
    } else {
        Err(GenerateError::Transient(format!(
            "Kie.ai: {msg} (code {code})"
        )))
    }
}

/// The task id of a submit answer (`data.taskId`, or top-level `taskId`).
pub fn task_id(answer: &Value) -> Option<String> {
    answer["data"]["taskId"]
        .as_str()
        .or_else(|| answer["taskId"].as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The URL of an uploaded file (`data.downloadUrl`, `fileUrl`, `file_url` or `url`).
pub fn uploaded_url(answer: &Value) -> Result<String, GenerateError> {
    if answer.get("success").and_then(Value::as_bool) == Some(false) {
        let msg = answer["msg"].as_str().unwrap_or("the upload was refused");
        return Err(GenerateError::Permanent(format!("Kie.ai: {msg}")));
    }
    ["downloadUrl", "fileUrl", "file_url", "url"]
        .iter()
        .find_map(|k| answer["data"][*k].as_str())
        .map(str::to_string)
        .ok_or_else(|| GenerateError::Transient("Kie.ai: the upload answer has no URL".into()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_api_reads_its_own_states() {
        assert_eq!(
            Api::Market.state(&json!({"state": "processing"})),
            State::Running
        );
        assert_eq!(Api::Market.state(&json!({"state": "success"})), State::Done);
        assert_eq!(
            Api::Market.state(&json!({"state": "fail", "failMsg": "NSFW"})),
            State::Failed("NSFW".into())
        );
        assert_eq!(Api::Veo.state(&json!({"successFlag": 0})), State::Running);
        assert_eq!(Api::Veo.state(&json!({"successFlag": 1})), State::Done);
        assert_eq!(
            Api::Aleph.state(&json!({"successFlag": 3, "errorMsg": "bad video"})),
            State::Failed("bad video".into())
        );
        assert_eq!(
            Api::Suno.state(&json!({"status": "FIRST_SUCCESS"})),
            State::Running
        );
        assert_eq!(Api::Suno.state(&json!({"status": "SUCCESS"})), State::Done);
        assert_eq!(
            Api::Suno.state(&json!({"status": "SENSITIVE_WORD_ERROR"})),
            State::Failed("SENSITIVE_WORD_ERROR".into())
        );
        assert_eq!(
            Api::SunoSounds.state(&json!({"status": "PENDING", "callbackType": "complete"})),
            State::Done
        );
    }

    #[test]
    fn market_results_are_the_parsed_result_json() {
        let data = json!({"resultJson": "{\"resultUrls\": [\"https://a/1.png\"]}"});
        assert_eq!(
            Api::Market.result(&data).unwrap()["resultUrls"][0],
            "https://a/1.png"
        );
        let data = json!({"resultJson": "", "result": {"resultUrls": ["x"]}});
        assert_eq!(Api::Market.result(&data).unwrap()["resultUrls"][0], "x");
        assert!(Api::Market.result(&json!({})).is_err());
    }

    #[test]
    fn envelopes_with_another_code_fail_with_kies_message() {
        assert!(envelope(json!({"code": 200, "data": {}})).is_ok());
        assert!(matches!(
            envelope(json!({"data": {}})).unwrap_err(),
            GenerateError::Transient(_)
        ));
        assert!(matches!(
            envelope(json!({"code": 455, "msg": "maintenance"})).unwrap_err(),
            GenerateError::Transient(_)
        ));
        let e = envelope(json!({"code": 422, "msg": "Validation error: prompt"})).unwrap_err();
        assert!(
            matches!(e, GenerateError::Permanent(m) if m == "Kie.ai: Validation error: prompt")
        );
        assert!(matches!(
            envelope(json!({"code": 500, "msg": "busy"})).unwrap_err(),
            GenerateError::Transient(_)
        ));
        assert_eq!(
            task_id(&json!({"data": {"taskId": "t1"}})).as_deref(),
            Some("t1")
        );
        assert_eq!(task_id(&json!({"taskId": "t2"})).as_deref(), Some("t2"));
    }
}
