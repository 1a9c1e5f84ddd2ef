//! The Redis event backend against a real Redis: one publish of a generation's progress feeds
//! its board (with a replay id) and the documented `job:{id}:progress` channel.

use std::time::Duration;

use boards_shared::{
    config::Config,
    events::{BoardEvent, Delivery, Event, EventBus, ProgressEvent, StreamId, Topic},
    redis_pool::build_redis_pool,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<Delivery>) -> Event {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(Delivery::Event(e))) => return e,
            Ok(Some(_)) => continue,
            other => panic!("no event: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_progress_event_reaches_its_board_its_replay_stream_and_its_generation_channel() {
    let mut config = Config::default().redis;
    let prefix = format!("t{}:", Uuid::new_v4().simple());
    config.channel_prefix.clone_from(&prefix);
    let pool = build_redis_pool(&config).unwrap();
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let bus = EventBus::from_config(&config, pool, logger);
    let stop = CancellationToken::new();
    let mut boards = bus.subscribe(&[Topic::Board], stop.clone());
    let mut progress = bus.subscribe(&[Topic::Progress], stop.clone());
    for rx in [&mut boards, &mut progress] {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(Delivery::Connected)) => {}
            other => panic!("not connected: {other:?}"),
        }
    }
    let (board, generation) = (Uuid::new_v4(), Uuid::new_v4());
    let event = ProgressEvent::new(generation, "processing", 42.0, "processing", None);
    bus.publish(Event::Board {
        board,
        event: BoardEvent::GenerationProgress(event.clone()),
        id: None,
    });
    let Event::Board {
        board: got_board,
        event: got,
        id: Some(id),
    } = next_event(&mut boards).await
    else {
        panic!("no board event with an id");
    };
    assert_eq!(got_board, board);
    assert_eq!(got, BoardEvent::GenerationProgress(event.clone()));
    assert_eq!(
        next_event(&mut progress).await,
        Event::Progress(event.clone())
    );
    let history = bus
        .board_history(
            board,
            StreamId {
                ms: id.ms - 1,
                seq: 0,
            },
            10,
        )
        .await
        .unwrap();
    let kept: Vec<_> = history.events.iter().map(|(i, _)| *i).collect();
    assert!(kept.contains(&id), "{kept:?} lacks {id}");
    assert_eq!(bus.dropped(), 0);
    stop.cancel();
    boards_shared::testing::delete_redis_keys(config.url.expose(), &prefix);
}
