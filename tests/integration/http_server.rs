//! A real HTTP/1.1 server on loopback for the engine's remote calls. It records
//! every request and behaves like an idempotent API: a repeated `Idempotency-Key`
//! gets the first answer again and is not processed twice.
//!
//! Paths: `/ok` answers 200 with a JSON body; `/flaky` answers 500 the first time
//! a key is seen, then 200; `/status/CODE` answers CODE; `/slow` waits 3 s first;
//! `/sleep/N` waits N seconds first; `/redirect?to=URL` answers 302 to URL.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: serde_json::Value,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    /// Keys processed (answered 2xx the first time), with their answer.
    done: HashMap<String, (u16, String)>,
    /// Keys that failed once on `/flaky`.
    flaked: HashMap<String, u32>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
        });
        Server { url, state }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("lock").requests.clone()
    }

    /// How many distinct keys were processed successfully.
    pub fn processed_keys(&self) -> HashMap<String, (u16, String)> {
        self.state.lock().expect("lock").done.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let body: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        let key = headers.get("idempotency-key").cloned().unwrap_or_default();
        if path == "/slow" {
            std::thread::sleep(Duration::from_secs(3));
        }
        if let Some(secs) = path.strip_prefix("/sleep/").and_then(|s| s.parse().ok()) {
            std::thread::sleep(Duration::from_secs(secs));
        }
        if let Some(to) = path.strip_prefix("/redirect?to=") {
            state.lock().expect("lock").requests.push(Request {
                method: method.clone(),
                path: path.clone(),
                headers: headers.clone(),
                body: body.clone(),
            });
            let reply =
                format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n");
            writer.write_all(reply.as_bytes())?;
            writer.flush()?;
            continue;
        }
        let (status, text) = {
            let mut st = state.lock().expect("lock");
            st.requests.push(Request {
                method: method.clone(),
                path: path.clone(),
                headers: headers.clone(),
                body: body.clone(),
            });
            if let Some(answer) = st.done.get(&key).filter(|_| !key.is_empty()) {
                answer.clone()
            } else {
                let n = st.requests.len();
                let answer = if let Some(code) = path.strip_prefix("/status/") {
                    (
                        code.parse().unwrap_or(500),
                        format!("{{\"status\":{code}}}"),
                    )
                } else if path == "/flaky" && st.flaked.get(&key).copied().unwrap_or(0) == 0 {
                    st.flaked.insert(key.clone(), 1);
                    (500, "{\"error\":\"try again\"}".to_string())
                } else {
                    (200, format!("{{\"ok\":true,\"n\":{n},\"echo\":{body}}}"))
                };
                if (200..300).contains(&answer.0) && !key.is_empty() {
                    st.done.insert(key.clone(), answer.clone());
                }
                answer
            }
        };
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        writer.write_all(reply.as_bytes())?;
        writer.flush()?;
    }
}
